import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError } from '../../shared/config';
import { googleErrorInfo } from '../../shared/gcp/errors';
import { loadScalingAlertsConfig } from '../../shared/scaling-alerts/config';
import { parseRuleFile } from '../../shared/scaling-alerts/rules';

const rules = {
  version: 1,
  ownership: { namePrefixes: ['ilb-'] },
  tiers: {
    haproxy: {
      autoscalers: [{ zone: 'us-central1-b', name: 'ilb-haproxy' }],
      floor: 1,
      ceiling: 4,
      maxStep: 2,
      cooldownSec: 60,
      maxChangesPerHour: 4,
      lease: { defaultSec: 600, maxSec: 1200 },
    },
  },
};

describe('loadScalingAlertsConfig', () => {
  it('reads the rule file inline or from a file, with defaults', () => {
    const inline = loadScalingAlertsConfig({ SCALING_RULES_JSON: JSON.stringify(rules) });
    expect(inline).toMatchObject({ metrics: true, operationTimeoutMs: 60_000, maxAttempts: 5 });
    expect(Object.keys(inline.rules.tiers)).toEqual(['haproxy']);
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'rules-')), 'rules.json');
    writeFileSync(file, JSON.stringify(rules));
    const fromFile = loadScalingAlertsConfig({
      SCALING_RULES_FILE: file,
      SCALING_ALERTS_METRICS: 'false',
      SCALING_ALERTS_MAX_ATTEMPTS: '3',
    });
    expect(fromFile).toMatchObject({ metrics: false, maxAttempts: 3 });
    expect(fromFile.rules).toEqual(inline.rules);
  });

  it.each([
    [{}, /exactly one of/],
    [{ SCALING_RULES_JSON: '{}', SCALING_RULES_FILE: '/x' }, /exactly one of/],
    [{ SCALING_RULES_JSON: 'not json' }, /SCALING_RULES_JSON: not JSON/],
    [{ SCALING_RULES_JSON: JSON.stringify({ ...rules, version: 2 }) }, /invalid rule file: version/],
    [{ SCALING_RULES_FILE: '/nonexistent/rules.json' }, /cannot read/],
    [{ SCALING_RULES_JSON: '{}', SCALING_ALERTS_MAX_ATTEMPTS: '0' }, /SCALING_ALERTS_MAX_ATTEMPTS/],
  ])('refuses %j', (env, message) => {
    expect(() => loadScalingAlertsConfig(env)).toThrow(ConfigError);
    expect(() => loadScalingAlertsConfig(env)).toThrow(message);
  });
});

describe('googleErrorInfo', () => {
  it("reads the status and reasons of Google's error body from the REST client's message", () => {
    const body = {
      error: {
        code: 400,
        message: 'not ready',
        errors: [{ reason: 'resourceNotReady', domain: 'global', message: 'not ready' }],
      },
    };
    expect(googleErrorInfo(Object.assign(new Error(JSON.stringify(body)), { code: 400 }))).toMatchObject({
      status: 400,
      reasons: ['resourceNotReady'],
    });
    expect(googleErrorInfo(Object.assign(new Error('gone'), { code: 5 }))).toMatchObject({ status: 404 });
    expect(googleErrorInfo(new Error('socket hang up'))).toMatchObject({ status: undefined, reasons: [] });
  });
});

test("docs/configuration.md's rule file example is a valid rule file", () => {
  const doc = readFileSync(path.join(__dirname, '../../docs/configuration.md'), 'utf8');
  const section = doc.split('\n## scalingAlerts\n')[1]?.split('\n## ')[0] ?? '';
  const json = /```json\n([\s\S]*?)\n```/.exec(section)?.[1];
  expect(json).toBeDefined();
  const parsed = parseRuleFile(JSON.parse(json ?? ''));
  expect(parsed).toMatchObject({ ok: true });
});
