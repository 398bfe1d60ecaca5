'use strict';
/**
 * A strict stand-in for `gcloud`, for the deploy tests. It knows the commands the deploy uses and,
 * for each, the flags real gcloud accepts (./flags.js, from Google's reference); any other flag,
 * a value-less value flag or a missing `--project` fails as gcloud would. It keeps resources and
 * IAM policies in $FAKE_GCLOUD_STATE/state.json, answers describe / list / get-iam-policy from
 * them, and appends every invocation to $FAKE_GCLOUD_STATE/calls.jsonl.
 * $FAKE_GCLOUD_STATE/fail.json ({"match": "<substring of the command line>", "times": 1}) makes
 * matching calls fail, to test resuming. As Google does, it keeps a deleted custom role 7 days
 * (`deleted: True`, no binding, `undelete`), and with `holdsEgressAddresses` in the state it keeps
 * a Direct VPC egress address in its subnet after the function is gone (delete it to release it).
 * `node gcloud.js --serve` answers the same over HTTP (bin/gcloud with FAKE_GCLOUD_URL set): one
 * process for the whole test instead of a Node start per call.
 */
const fs = require('node:fs');
const path = require('node:path');
const commands = require('./flags');

let dir;
let statePath;

// gcloud-wide flags (https://cloud.google.com/sdk/gcloud/reference, "GCLOUD WIDE FLAGS").
const globalValue = [
  'access-token-file',
  'account',
  'billing-project',
  'configuration',
  'flags-file',
  'flatten',
  'format',
  'impersonate-service-account',
  'project',
  'trace-token',
  'verbosity',
];
const globalBool = ['help', 'log-http', 'quiet', 'user-output-enabled', 'no-user-output-enabled'];

class GcloudError extends Error {
  constructor(message, code = 1) {
    super(message);
    this.code = code;
  }
}

function loadState() {
  if (!fs.existsSync(statePath))
    return { projectNumber: '123456789012', resources: {}, iam: {}, secretValues: {} };
  return JSON.parse(fs.readFileSync(statePath, 'utf8'));
}

function parse(argv) {
  const words = [];
  let i = 0;
  while (i < argv.length && !argv[i].startsWith('-')) words.push(argv[i++]);
  let command;
  for (let n = words.length; n > 0; n--) {
    const key = words.slice(0, n).join(' ');
    if (commands[key]) {
      command = key;
      break;
    }
  }
  if (!command)
    throw new GcloudError(`(gcloud) Invalid choice: '${words.join(' ')}' (unknown to the stand-in)`, 2);
  const spec = commands[command];
  const positionals = words.slice(command.split(' ').length);
  const flags = {};
  const where = `(gcloud.${command.replace(/ /g, '.')})`;
  for (; i < argv.length; i++) {
    const token = argv[i];
    if (token === '-q') {
      flags.quiet = true;
      continue;
    }
    if (!token.startsWith('--')) {
      positionals.push(token);
      continue;
    }
    const eq = token.indexOf('=');
    const name = token.slice(2, eq < 0 ? undefined : eq);
    const isValue = spec.value.includes(name) || globalValue.includes(name);
    const isBool = spec.bool.includes(name) || globalBool.includes(name);
    if (!isValue && !isBool) throw new GcloudError(`${where} unrecognized arguments: --${name}`, 2);
    if (isValue) {
      let value;
      if (eq >= 0) value = token.slice(eq + 1);
      else if (i + 1 < argv.length) value = argv[++i];
      else throw new GcloudError(`${where} argument --${name}: expected one argument`, 2);
      flags[name] = value;
    } else {
      if (eq >= 0) throw new GcloudError(`${where} argument --${name}: ignored explicit argument`, 2);
      flags[name] = true;
    }
  }
  return { command, positionals, flags, where };
}

const lastSegment = (name) => String(name).split('/').pop();
const kv = (s) =>
  Object.fromEntries(
    String(s)
      .split(',')
      .filter(Boolean)
      .map((p) => {
        const eq = p.indexOf('=');
        return [p.slice(0, eq), p.slice(eq + 1)];
      }),
  );

function get(obj, dotted) {
  let v = obj;
  for (const part of dotted.split('.')) {
    if (v === undefined || v === null) return undefined;
    v = v[part];
  }
  return v;
}

function render(items, format) {
  const fmt = format || 'json';
  if (fmt === 'json')
    return JSON.stringify(items.length === 1 && !items.isList ? items[0] : items, null, 2) + '\n';
  const m = /^value\((.*)\)$/.exec(fmt);
  if (!m) throw new GcloudError(`the stand-in supports --format=json and value(...), not ${fmt}`, 2);
  const fields = m[1].split(',').map((f) => f.trim());
  return items
    .map(
      (item) =>
        fields
          .map((f) => {
            // gcloud's basename() transform: the last segment of a URL.
            const base = /^(.*)\.basename\(\)$/.exec(f);
            const v = base ? lastSegment(get(item, base[1]) ?? '') || undefined : get(item, f);
            if (v === undefined || v === null) return '';
            if (Array.isArray(v)) return v.join(';');
            // Python's spelling, as gcloud prints a boolean.
            if (typeof v === 'boolean') return v ? 'True' : 'False';
            return typeof v === 'object' ? JSON.stringify(v) : String(v);
          })
          .join('\t') + '\n',
    )
    .join('');
}

function matches(item, filter) {
  if (!filter) return true;
  return filter.split(/\s+AND\s+/).every((term) => {
    const m = /^([A-Za-z0-9_.-]+)\s*(=|~|:)\s*(.*)$/.exec(term.trim());
    if (!m) throw new GcloudError(`the stand-in cannot evaluate the filter term ${term}`, 2);
    const raw = m[3].replace(/^"(.*)"$/, '$1');
    const v = get(item, m[1]);
    if (v === undefined) return false;
    if (m[2] === '~') return new RegExp(raw).test(String(v));
    if (m[2] === ':') return String(v).includes(raw);
    return String(v) === raw;
  });
}

/** The resource type of a command: its group, without the release track. */
function typeOf(command) {
  const words = command.split(' ').filter((w) => w !== 'alpha' && w !== 'beta');
  const verbs = ['create', 'describe', 'delete', 'undelete', 'list', 'update', 'deploy', 'add', 'ssh'];
  const at = words.findIndex(
    (w, i) =>
      i > 0 &&
      (verbs.includes(w) ||
        w.endsWith('-iam-policy-binding') ||
        w.endsWith('-iam-policy') ||
        w.startsWith('set-') ||
        w === 'rolling-action' ||
        w === 'add-invoker-policy-binding'),
  );
  return words.slice(0, at < 0 ? words.length : at).join(' ');
}

function main(argv, stdin) {
  const state = loadState();
  const { command, positionals, flags, where } = parse(argv);
  if (flags.help) return '';
  const project = command.startsWith('projects ') ? positionals[0] : flags.project;
  if (!project) throw new GcloudError(`${where} the stand-in requires --project on every command`, 2);
  const type = typeOf(command);
  const verb = command
    .split(' ')
    .slice(type.split(' ').length + (/^(alpha|beta) /.test(command) ? 1 : 0))
    .join(' ');
  const R = state.resources;
  const key = (t, name) => `${t}:${lastSegment(name)}`;
  const need = (k, what = k) => {
    if (!R[k]) throw new GcloudError(`${where} NOT_FOUND: ${what} was not found`);
    return R[k];
  };
  const labelsOf = (f) => ({ ...kv(f.labels || ''), ...kv(f['user-labels'] || '') });
  const out = (items) => render(items, flags.format);
  const refs = (f) => {
    const r = [];
    if (f.network) r.push(key('compute networks', f.network));
    if (f.subnet) r.push(key('compute networks subnets', f.subnet));
    if (f.router) r.push(key('compute routers', f.router));
    if (f.template) r.push(key('compute instance-templates', f.template));
    if (f['health-check']) r.push(key('compute health-checks', f['health-check']));
    if (f.topic) r.push(key('pubsub topics', f.topic));
    if (f['service-account']) r.push(key('iam service-accounts', f['service-account']));
    return r;
  };
  const save = () => fs.writeFileSync(statePath, JSON.stringify(state, null, 2));
  const create = (k, obj) => {
    if (R[k]) throw new GcloudError(`${where} ALREADY_EXISTS: ${k} already exists`);
    R[k] = obj;
    save();
  };
  const num = state.projectNumber;

  const ctx = {
    state,
    R,
    project,
    type,
    verb,
    command,
    positionals,
    flags,
    where,
    stdin,
    key,
    need,
    labelsOf,
    out,
    refs,
    save,
    create,
    num,
  };
  const answer = projectWide(ctx);
  if (answer !== undefined) return answer;
  if (['create', 'create http', 'create pubsub', 'deploy'].includes(verb)) return createResource(ctx);
  return resourceVerb(ctx);
}

/** Commands on the project, IAM policies, secret versions and ssh; undefined for the rest. */
function projectWide(ctx) {
  const { state, R, project, type, verb, positionals, flags, where, stdin, key, need, out, save, num } = ctx;
  switch (`${type}|${verb}`) {
    case 'projects|describe':
      return out([{ projectId: project, projectNumber: num }]);
    case 'projects|get-iam-policy':
    case 'secrets|get-iam-policy':
    case 'pubsub topics|get-iam-policy':
    case 'pubsub subscriptions|get-iam-policy':
    case 'run services|get-iam-policy': {
      const k = type === 'projects' ? `projects:${project}` : key(type, positionals[0]);
      if (type !== 'projects') need(k);
      return out([{ bindings: state.iam[k] || [], etag: 'BwX' }]);
    }
    case 'projects|add-iam-policy-binding':
    case 'projects|remove-iam-policy-binding':
    case 'secrets|add-iam-policy-binding':
    case 'pubsub topics|add-iam-policy-binding':
    case 'pubsub subscriptions|add-iam-policy-binding':
    case 'functions|add-invoker-policy-binding': {
      const k =
        type === 'projects'
          ? `projects:${project}`
          : type === 'functions'
            ? key('run services', positionals[0].toLowerCase())
            : key(type, positionals[0]);
      if (type !== 'projects') need(k);
      const role = type === 'functions' ? 'roles/run.invoker' : flags.role;
      const member = flags.member;
      if (!role || !member) throw new GcloudError(`${where} --member and --role are required`, 2);
      // A custom role can be bound only while it exists and is not deleted (IAM: roles.delete).
      const custom = /^projects\/[^/]+\/roles\/(.+)$/.exec(role);
      const customRole = custom && R[key('iam roles', custom[1])];
      if (custom && verb === 'add-iam-policy-binding' && (!customRole || customRole.deleted)) {
        throw new GcloudError(
          `${where} INVALID_ARGUMENT: Role (${role}) does not exist in the resource's hierarchy.`,
        );
      }
      if (/@\{|\{|\}/.test(member)) throw new GcloudError(`${where} INVALID_ARGUMENT: member ${member}`);
      const bindings = (state.iam[k] = state.iam[k] || []);
      // IAM keeps a binding per role and condition; `--condition` is a dict flag (key=value,…).
      const given = flags.condition && flags.condition !== 'None' ? flags.condition : undefined;
      const condition = given
        ? Object.fromEntries(
            given.split(',').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
          )
        : undefined;
      let b = bindings.find((x) => x.role === role && x.condition?.title === condition?.title);
      if (verb === 'remove-iam-policy-binding') {
        if (!b || !b.members.includes(member)) throw new GcloudError(`${where} Policy binding not found`);
        b.members = b.members.filter((m) => m !== member);
        if (b.members.length === 0) bindings.splice(bindings.indexOf(b), 1);
      } else {
        if (!b) bindings.push((b = { role, members: [], ...(condition ? { condition } : {}) }));
        if (!b.members.includes(member)) b.members.push(member);
      }
      save();
      return out([{ bindings }]);
    }
    case 'secrets versions|add': {
      const k = key('secrets', positionals[0]);
      need(k);
      if (flags['data-file'] !== '-')
        throw new GcloudError(`${where} the stand-in reads secrets from stdin only`, 2);
      if (!stdin) throw new GcloudError(`${where} INVALID_ARGUMENT: empty secret payload`);
      const values = (state.secretValues[lastSegment(positionals[0])] ||= []);
      values.push(stdin);
      R[k].versions = values.length;
      save();
      return {
        stdout: '',
        stderr: `Created version [${values.length}] of the secret [${positionals[0]}].\n`,
      };
    }
    case 'secrets versions|list': {
      const s = need(key('secrets', positionals[0]));
      const versions = Array.from({ length: s.versions || 0 }, (_, i) => ({
        name: `projects/${num}/secrets/${s.name}/versions/${(s.versions || 0) - i}`,
      }));
      const limited = flags.limit ? versions.slice(0, Number(flags.limit)) : versions;
      limited.isList = true;
      return out(limited);
    }
    case 'compute|ssh': {
      const instance = Object.values(R).find(
        (r) => r.type === 'compute instances' && r.name === positionals[0],
      );
      if (!instance) throw new GcloudError(`${where} NOT_FOUND: instance ${positionals[0]}`);
      if (!flags['tunnel-through-iap']) throw new GcloudError(`${where} the instance has no external IP`);
      state.ssh = [...(state.ssh || []), { instance: positionals[0], command: flags.command, stdin }];
      save();
      return '';
    }
  }

  return undefined;
}

/** `create` and `deploy`: a new resource, checked against what it names. */
function createResource(ctx) {
  const { R, project, type, positionals, flags, where, key, need, labelsOf, refs, create, num } = ctx;
  const name = positionals[0];
  let obj = { type, name, description: flags.description, labels: labelsOf(flags), refs: refs(flags) };
  let k = key(type, name);
  switch (type) {
    case 'iam service-accounts': {
      const email = `${name}@${project}.iam.gserviceaccount.com`;
      k = key(type, email);
      obj = {
        ...obj,
        name: `projects/${project}/serviceAccounts/${email}`,
        email,
        displayName: flags['display-name'],
      };
      break;
    }
    case 'iam roles':
      obj.includedPermissions = String(flags.permissions || '')
        .split(',')
        .filter(Boolean)
        .sort();
      obj.title = flags.title;
      break;
    case 'compute instance-templates':
      obj.properties = { labels: obj.labels, metadata: flags.metadata };
      if (/@\{/.test(flags.address || '')) throw new GcloudError(`${where} invalid address ${flags.address}`);
      break;
    case 'compute instances':
      if (flags.address !== undefined || !flags['no-address']) obj.externalIp = true;
      obj.metadata = flags.metadata;
      break;
    case 'compute addresses':
      obj.address = flags.addresses || '203.0.113.7';
      break;
    case 'compute instance-groups managed':
      obj.listManagedInstancesResults = listResults(flags, where) || 'PAGELESS';
      obj.instanceTemplate = `https://www.googleapis.com/compute/v1/projects/${project}/global/instanceTemplates/${flags.template}`;
      obj.status = {};
      break;
    case 'logging sinks':
      obj.writerIdentity = `serviceAccount:service-${num}@gcp-sa-logging.iam.gserviceaccount.com`;
      obj.destination = positionals[1];
      break;
    case 'monitoring channels': {
      const id = String(Object.keys(R).length + 1000);
      k = key(type, id);
      obj = {
        ...obj,
        name: `projects/${project}/notificationChannels/${id}`,
        displayName: flags['display-name'],
      };
      break;
    }
    case 'monitoring policies': {
      const policy = JSON.parse(flags.policy);
      for (const ch of policy.notificationChannels || []) {
        if (!/^projects\/[^/]+\/notificationChannels\/\d+$/.test(ch)) {
          throw new GcloudError(`${where} INVALID_ARGUMENT: notification channel ${ch}`);
        }
      }
      const id = String(Object.keys(R).length + 2000);
      k = key(type, id);
      obj = {
        ...obj,
        ...policy,
        name: `projects/${project}/alertPolicies/${id}`,
        labels: policy.userLabels,
      };
      break;
    }
    case 'functions': {
      return deployFunction(ctx, obj, k);
    }
  }
  for (const r of obj.refs) need(r, `${r} (referenced by ${k})`);
  create(k, obj);
  return '';
}

/** `functions deploy`: the function, and what Eventarc and Cloud Run make for it. */
function deployFunction(ctx, obj, k) {
  const { R, project, positionals, flags, where, key, need, save } = ctx;
  const name = positionals[0];
  const existing = R[k];
  obj.labels = { ...(existing ? existing.labels : {}), ...kv(flags['update-labels'] || '') };
  // `gcloud topic escaping`: `^D^` first picks another delimiter than the comma.
  if (flags['set-env-vars'] !== undefined) {
    const raw = flags['set-env-vars'];
    const alt = /^\^([^^]+)\^/.exec(raw);
    const pairs = alt ? raw.slice(alt[0].length).split(alt[1]) : raw.split(',');
    const bad = pairs.find((p) => !/^[A-Z_][A-Z0-9_]*=/.test(p));
    if (bad !== undefined) throw new GcloudError(`${where} --set-env-vars: bad pair ${bad}`, 2);
    obj.env = Object.fromEntries(pairs.map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)]));
  }
  const http = flags['trigger-http'] === true;
  if (http === Boolean(flags['trigger-topic'])) {
    throw new GcloudError(`${where} exactly one of --trigger-http and --trigger-topic is required`, 2);
  }
  if (http && (flags.retry || flags['trigger-service-account'])) {
    throw new GcloudError(`${where} --retry and --trigger-service-account need an event trigger`, 2);
  }
  obj.refs = http ? [] : [key('pubsub topics', flags['trigger-topic'])];
  const build = flags['build-service-account'];
  if (build !== undefined) {
    const m = /^projects\/([^/]+)\/serviceAccounts\/([^/]+@[^/]+)$/.exec(build);
    if (!m)
      throw new GcloudError(
        `${where} --build-service-account: ${build} is not projects/P/serviceAccounts/EMAIL`,
        2,
      );
    need(key('iam service-accounts', m[2]), `build service account ${m[2]}`);
  }
  const triggerId = `${name.toLowerCase()}-000001`;
  if (http) obj.url = `https://${flags.region}-${project}.cloudfunctions.net/${name}`;
  else
    obj.eventTrigger = {
      trigger: `projects/${project}/locations/${flags.region}/triggers/${triggerId}`,
    };
  obj.flags = flags;
  R[k] = obj;
  if (!existing && http) {
    R[key('run services', name.toLowerCase())] = {
      type: 'run services',
      name: name.toLowerCase(),
      owner: k,
    };
  } else if (!existing) {
    const sub = `eventarc-${flags.region}-${triggerId}-sub-001`;
    R[key('eventarc triggers', triggerId)] = {
      type: 'eventarc triggers',
      name: triggerId,
      owner: k,
      transport: { pubsub: { subscription: `projects/${project}/subscriptions/${sub}` } },
    };
    R[key('pubsub subscriptions', sub)] = {
      type: 'pubsub subscriptions',
      name: `projects/${project}/subscriptions/${sub}`,
      owner: k,
      refs: [key('pubsub topics', flags['trigger-topic'])],
    };
    R[key('run services', name.toLowerCase())] = {
      type: 'run services',
      name: name.toLowerCase(),
      owner: k,
    };
  }
  save();
  return '';
}

/** describe, list, delete, undelete, update and the groups' own verbs. */
function resourceVerb(ctx) {
  const { state, R, project, type, verb, command, positionals, flags, where, key, need, out, save } = ctx;
  const name = positionals[0];
  switch (verb) {
    case 'describe':
      return out([need(key(type, name))]);
    case 'list': {
      const items = Object.values(R).filter((r) => r.type === type && matches(r, flags.filter));
      items.isList = true;
      return out(items);
    }
    case 'delete': {
      for (const n of positionals) {
        const k = key(type, n);
        need(k);
        // IAM keeps a deleted custom role 7 days: describe still finds it, marked deleted.
        if (type === 'iam roles') {
          R[k].deleted = true;
          continue;
        }
        const users = Object.entries(R).filter(([, r]) => (r.refs || []).includes(k));
        if (users.length) throw inUse(users[0][1], n, project, flags, where);
        delete R[k];
        delete state.iam[k];
        for (const [ok, r] of Object.entries(R)) if (r.owner === k) delete R[ok];
      }
      save();
      return '';
    }
    case 'undelete': {
      const r = need(key(type, name));
      if (!r.deleted) throw new GcloudError(`${where} FAILED_PRECONDITION: the role is not deleted`);
      delete r.deleted;
      save();
      return '';
    }
    case 'update': {
      const k = key(type, name);
      const r = need(k);
      if (r.deleted) throw new GcloudError(`${where} FAILED_PRECONDITION: the role is deleted`);
      if (type === 'compute instance-groups managed' && listResults(flags, where)) {
        r.listManagedInstancesResults = listResults(flags, where);
      }
      if (flags['update-labels']) r.labels = { ...r.labels, ...kv(flags['update-labels']) };
      if (type === 'iam roles' && flags.permissions)
        r.includedPermissions = flags.permissions.split(',').sort();
      if (type === 'pubsub subscriptions' && flags['dead-letter-topic']) {
        need(key('pubsub topics', flags['dead-letter-topic']));
        r.deadLetterPolicy = {
          deadLetterTopic: `projects/${project}/topics/${flags['dead-letter-topic']}`,
          maxDeliveryAttempts: Number(flags['max-delivery-attempts'] || 5),
        };
        r.retryPolicy = {
          minimumBackoff: flags['min-retry-delay'],
          maximumBackoff: flags['max-retry-delay'],
        };
      }
      if (type === 'run services') {
        need(key('compute networks', flags.network));
        need(key('compute networks subnets', flags.subnet));
        holdEgressAddress(state, flags);
        r.spec = {
          template: {
            metadata: {
              annotations: {
                'run.googleapis.com/network-interfaces': JSON.stringify([
                  { network: flags.network, subnetwork: flags.subnet },
                ]),
                'run.googleapis.com/vpc-access-egress': flags['vpc-egress'],
              },
            },
          },
        };
      }
      save();
      return '';
    }
    case 'rolling-action start-update': {
      const r = need(key(type, name));
      const template = /^template=(.+)$/.exec(flags.version || '');
      if (!template) throw new GcloudError(`${where} --version must name a template`, 2);
      need(key('compute instance-templates', template[1]));
      r.instanceTemplate = r.instanceTemplate.replace(/[^/]+$/, template[1]);
      r.refs = [
        key('compute instance-templates', template[1]),
        ...r.refs.filter((x) => !x.startsWith('compute instance-templates:')),
      ];
      save();
      return '';
    }
    case 'set-autoscaling': {
      const r = need(key(type, name));
      // As gcloud: a new autoscaler is named `<group>-<4 random characters>`, reported as a URL.
      if (!r.status.autoscaler) {
        const scope = flags.region ? `regions/${flags.region}` : `zones/${flags.zone}`;
        const suffix = require('node:crypto').randomBytes(2).toString('hex');
        r.status.autoscaler = `https://www.googleapis.com/compute/v1/projects/${project}/${scope}/autoscalers/${name}-${suffix}`;
      }
      r.autoscaling = { min: flags['min-num-replicas'], max: flags['max-num-replicas'] };
      save();
      return '';
    }
  }
  throw new GcloudError(`${where} the stand-in does not implement ${command}`, 2);
}

/** `--list-managed-instances-results` as the API's enum, after gcloud's choice check. */
function listResults(flags, where) {
  const v = flags['list-managed-instances-results'];
  if (v === undefined) return undefined;
  if (v !== 'pageless' && v !== 'paginated') {
    throw new GcloudError(`${where} argument --list-managed-instances-results: Invalid choice: '${v}'.`, 2);
  }
  return v.toUpperCase();
}

/**
 * With `holdsEgressAddresses` in the state, Direct VPC egress reserves an address in the subnet
 * that outlives the service, as Cloud Run's do for 1–2 hours (a test releases it by removing it).
 */
function holdEgressAddress(state, flags) {
  if (!state.holdsEgressAddresses) return;
  const subnet = `compute networks subnets:${flags.subnet}`;
  const held = Object.values(state.resources).some(
    (r) => r.purpose === 'SERVERLESS' && r.refs.includes(subnet),
  );
  if (held) return;
  const name = `serverless-ipv4-${1712345678901234567n + BigInt(Object.keys(state.resources).length)}`;
  state.resources[`compute addresses:${name}`] = {
    type: 'compute addresses',
    name,
    purpose: 'SERVERLESS',
    region: flags.region,
    refs: [subnet],
  };
}

/** Compute's answer to deleting what another resource still uses (its text for a held subnet). */
function inUse(user, name, project, flags, where) {
  if (user.purpose === 'SERVERLESS') {
    const at = `projects/${project}/regions/${flags.region}`;
    return new GcloudError(
      `${where} Could not fetch resource:\n - The subnetwork resource '${at}/subnetworks/${name}' is already being used by '${at}/addresses/${user.name}'`,
    );
  }
  return new GcloudError(
    `${where} resourceInUseByAnotherResource: ${name} is used by ${user.type} ${user.name}`,
  );
}

function record(entry) {
  fs.appendFileSync(path.join(dir, 'calls.jsonl'), JSON.stringify(entry) + '\n');
}

function failure(argv) {
  const p = path.join(dir, 'fail.json');
  if (!fs.existsSync(p)) return false;
  const f = JSON.parse(fs.readFileSync(p, 'utf8'));
  if (f.times > 0 && argv.join(' ').includes(f.match)) {
    f.times -= 1;
    fs.writeFileSync(p, JSON.stringify(f));
    return true;
  }
  return false;
}

/** One gcloud invocation against the state in `stateDir`. */
function invoke(argv, stdin, stateDir) {
  dir = stateDir;
  statePath = path.join(dir, 'state.json');
  try {
    if (failure(argv)) throw new GcloudError('(gcloud) INTERNAL: injected failure');
    const output = main(argv, stdin);
    const { stdout, stderr } = typeof output === 'string' ? { stdout: output, stderr: '' } : output;
    record({ args: argv, code: 0 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    if (!(err instanceof GcloudError)) throw err;
    record({ args: argv, code: err.code });
    return { code: err.code, stdout: '', stderr: `ERROR: ${err.message}\n` };
  }
}

function serve() {
  const http = require('node:http');
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      // Body: the arguments, NUL-terminated; X-Dir: the shim's temp dir (stdin in, stderr out).
      const argv = Buffer.concat(chunks).toString('utf8').split('\0').slice(0, -1);
      const tmp = String(req.headers['x-dir']);
      const stdin = fs.readFileSync(path.join(tmp, 'stdin'), 'utf8');
      let r;
      try {
        r = invoke(argv, stdin, String(req.headers['x-state']));
      } catch (err) {
        r = { code: 3, stdout: '', stderr: `fake gcloud crashed: ${err.stack}\n` };
      }
      fs.writeFileSync(path.join(tmp, 'err'), r.stderr);
      res.writeHead(200 + r.code, { 'content-type': 'text/plain' });
      res.end(r.stdout);
    });
  });
  server.listen(0, '127.0.0.1', () => process.stdout.write(`listening ${server.address().port}\n`));
}

if (process.argv[2] === '--serve') {
  serve();
} else {
  const stateDir = process.env.FAKE_GCLOUD_STATE;
  if (!stateDir) {
    process.stderr.write('fake gcloud: FAKE_GCLOUD_STATE is not set\n');
    process.exit(3);
  }
  const argv = process.argv.slice(2);
  const needsStdin = argv.includes('--data-file=-') || (argv[0] === 'compute' && argv[1] === 'ssh');
  const r = invoke(argv, needsStdin ? fs.readFileSync(0, 'utf8') : '', stateDir);
  process.stdout.write(r.stdout);
  process.stderr.write(r.stderr);
  process.exitCode = r.code;
}
