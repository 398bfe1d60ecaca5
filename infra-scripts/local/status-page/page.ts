import { nodeMetaKeys } from '../../../shared/contract';

/** The status page itself: one self-contained HTML document that polls /api/state. */
export const page = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>gce-ilb-orchestrator sandbox</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #202124; background: #f8f9fa; }
  h1 { font-size: 1.3rem; margin: 0 0 .2rem; } h2 { font-size: 1.05rem; margin: 1.2rem 0 .4rem; }
  .muted { color: #5f6368; } .grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(600px, 1fr)); gap: 1rem; }
  .card { background: #fff; border: 1px solid #dadce0; border-radius: 8px; padding: .8rem 1rem; overflow-x: auto; }
  td { white-space: nowrap; } a { color: #1a73e8; }
  table { border-collapse: collapse; width: 100%; } th, td { text-align: left; padding: .2rem .4rem; border-bottom: 1px solid #eee; font-size: 13px; }
  .ok { color: #188038; font-weight: 600; } .bad { color: #d93025; font-weight: 600; } .warn { color: #e37400; font-weight: 600; }
  code { font-size: 12px; }
</style>
</head>
<body>
<h1>gce-ilb-orchestrator sandbox</h1>
<div class="muted" id="updated">loading…</div>
<div id="links"></div>
<div id="scenario"></div>
<h2>Tiers</h2><div class="grid" id="tiers"></div>
<h2>Consul</h2><div class="card" id="consul"></div>
<div class="grid">
  <div><h2>Recent events</h2><div class="card"><table id="events"></table></div></div>
  <div><h2>Orchestrator actions</h2><div class="card"><table id="actions"></table></div></div>
</div>
<script>
const esc = (s) => String(s ?? '').replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
const cls = (s) => (s === 'passing' || s === 'RUNNING' ? 'ok' : s === 'critical' || s === 'TERMINATED' ? 'bad' : 'warn');
function health(consul, name, id) {
  const node = consul.nodes.find((n) => n.name === name);
  if (!node) return '<span class="warn">not in catalog</span>';
  const nodeId = node.meta[${JSON.stringify(nodeMetaKeys.instanceId)}];
  const stale = !nodeId ? ' <span class="warn">(no metadata)</span>' : nodeId !== id ? ' <span class="bad">(stale id)</span>' : '';
  const checks = node.checks.map((c) => '<span class="' + cls(c.status) + '">' + esc(c.service || c.id) + ':' + esc(c.status) + '</span>').join(' ');
  return checks + stale;
}
function render(s) {
  document.getElementById('updated').textContent = 'updated ' + new Date(s.at).toLocaleTimeString() + ' · project ' + s.compute.project;
  document.getElementById('links').innerHTML = Object.entries(s.links).map(([k, v]) => esc(k) + ': <a href="' + esc(v) + '">' + esc(v) + '</a>').join(' · ');
  document.getElementById('scenario').innerHTML = s.scenario ? '<p class="warn">scenario running: ' + esc(s.scenario) + '</p>' : '';
  const autoscalers = s.compute.autoscalers;
  document.getElementById('tiers').innerHTML = s.compute.groups.map((g) => {
    const as = autoscalers.find((a) => a.target === g.selfLink);
    const p = as && as.autoscalingPolicy;
    const policy = p ? 'autoscaler ' + esc(as.name) + ': min ' + p.minNumReplicas + ', max ' + p.maxNumReplicas + ', mode ' + esc(p.mode) +
      (p.customMetricUtilizations || []).map((m) => ', target ' + m.utilizationTarget + ' of ' + esc(m.metric.split('/').slice(-2).join('/'))).join('') +
      ', recommended ' + esc(as.recommendedSize) + (as.statusDetails || []).map((d) => ' <span class="warn">' + esc(d.type) + '</span>').join('') : 'no autoscaler';
    const rows = g.managedInstances.map((m) => '<tr><td>' + esc(m.zone) + '</td><td>' + esc(m.name) + '</td><td><code>' + esc(m.id) + '</code></td><td>' + esc(m.networkIP) +
      '</td><td class="' + cls(m.instanceStatus) + '">' + esc(m.instanceStatus || '—') + (m.hung ? ' (hung)' : '') + '</td><td>' + esc(m.currentAction) + '</td><td>' + health(s.consul, m.name, m.id) + '</td></tr>').join('');
    return '<div class="card"><b>' + esc(g.name) + '</b> · target ' + g.targetSize + (g.status.isStable ? '' : ' <span class="warn">changing</span>') +
      '<div class="muted">' + policy + '</div><table><tr><th>zone</th><th>instance</th><th>id</th><th>ip</th><th>status</th><th>action</th><th>Consul health</th></tr>' + rows + '</table></div>';
  }).join('');
  const c = s.consul;
  document.getElementById('consul').innerHTML = 'leader <b>' + esc(c.leader || 'none') + '</b> · servers ' +
    c.servers.map((x) => '<span class="' + (x.running ? 'ok' : 'bad') + '">' + esc(x.name) + '</span>').join(' ') + ' · ' + c.nodes.length + ' nodes in catalog · deliveries ' +
    s.deliveries.map((d) => esc(d.subscription) + ': ' + d.delivered + ' ok, ' + d.failed + ' failed').join('; ');
  document.getElementById('events').innerHTML = '<tr><th>time</th><th>what</th><th></th></tr>' +
    s.compute.events.slice(-25).reverse().map((e) => '<tr><td>' + esc(new Date(e.at).toLocaleTimeString()) + '</td><td>' + esc(e.kind) + '</td><td>' + esc(e.message) + '</td></tr>').join('');
  document.getElementById('actions').innerHTML = '<tr><th>time</th><th>function</th><th>decision</th><th></th></tr>' +
    s.actions.slice(-25).reverse().map((a) => '<tr><td>' + esc(new Date(a.at).toLocaleTimeString()) + '</td><td>' + esc(a.function) + '</td><td>' + esc(a.decision) + '</td><td>' + esc(a.message) + '</td></tr>').join('');
}
async function refresh() {
  try { render(await (await fetch('/api/state')).json()); } catch (e) { document.getElementById('updated').textContent = 'sandbox not answering: ' + e; }
}
refresh();
setInterval(refresh, 2000);
</script>
</body>
</html>
`;
