import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { servedTarget } from '../../functions/start';
import { classifyError } from '../../shared/errors';
import { ConfigError, jsonSettingGiven, parseEnv, readJsonSetting } from '../../shared/settings';

const numbers = (data: unknown) => {
  const parsed = z.array(z.number()).safeParse(data);
  if (!parsed.success) throw new ConfigError('a list of numbers is required');
  return parsed.data;
};

describe('readJsonSetting: X_FILE or X_JSON, exactly one', () => {
  test('inline, or from a file', () => {
    expect(readJsonSetting({ DOC_JSON: '[1, 2]' }, 'DOC', numbers)).toEqual([1, 2]);
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'settings-')), 'doc.json');
    writeFileSync(file, '[3]');
    expect(readJsonSetting({ DOC_FILE: file }, 'DOC', numbers)).toEqual([3]);
  });

  test.each([
    [{}, 'exactly one of DOC_FILE and DOC_JSON must be set'],
    [{ DOC_FILE: '/x.json', DOC_JSON: '[1]' }, 'exactly one of DOC_FILE and DOC_JSON must be set'],
    // An empty variable is unset, as for the consul CLI.
    [{ DOC_FILE: '', DOC_JSON: '' }, 'exactly one of DOC_FILE and DOC_JSON must be set'],
    [{ DOC_JSON: '   ' }, /DOC_JSON: .*(at least|too small|>=)/i],
    [{ DOC_FILE: '/nonexistent/doc.json' }, /^DOC_FILE: cannot read \/nonexistent\/doc.json/],
    [{ DOC_JSON: '{"a":' }, /^DOC_JSON: not JSON/],
    // Not a guess by the first character: a path given as _JSON is not JSON.
    [{ DOC_JSON: '/etc/doc.json' }, /^DOC_JSON: not JSON/],
    [{ DOC_JSON: '{"a":1}' }, 'DOC_JSON: a list of numbers is required'],
  ])('refuses %j with a ConfigError naming the variable', (env, message) => {
    expect(() => readJsonSetting(env, 'DOC', numbers)).toThrow(ConfigError);
    expect(() => readJsonSetting(env, 'DOC', numbers)).toThrow(message);
  });

  test('another error from the parser is not relabelled', () => {
    const boom = () => {
      throw new TypeError('bug');
    };
    expect(() => readJsonSetting({ DOC_JSON: '1' }, 'DOC', boom)).toThrow(TypeError);
  });

  test('jsonSettingGiven: either variable, non-empty', () => {
    expect(jsonSettingGiven({ DOC_FILE: '/x' }, 'DOC')).toBe(true);
    expect(jsonSettingGiven({ DOC_JSON: '[]' }, 'DOC')).toBe(true);
    expect(jsonSettingGiven({ DOC_JSON: '' }, 'DOC')).toBe(false);
    expect(jsonSettingGiven({ OTHER_JSON: '[]' }, 'DOC')).toBe(false);
  });
});

test('a ConfigError is permanent: no retry fixes a setting', () => {
  const err = new ConfigError('DOC_JSON: not JSON');
  expect(classifyError(err)).toBe(err);
  expect(err.transient).toBe(false);
});

describe('parseEnv', () => {
  const schema = z.object({ N: z.coerce.number().int().default(3), S: z.string().optional() });
  test('defaults for unset or empty variables', () => {
    expect(parseEnv(schema, { N: '', S: 'x' })).toEqual({ N: 3, S: 'x' });
  });
  test('a ConfigError naming every bad variable', () => {
    expect(() => parseEnv(schema, { N: 'many' })).toThrow(/^invalid environment: N: /);
  });
});

describe('servedTarget: the entry point this process serves', () => {
  test("the Functions Framework's --target flag first, as the framework decides", () => {
    expect(servedTarget({ FUNCTION_TARGET: 'b' }, ['node', 'main.js', '--target=a'])).toBe('a');
    expect(servedTarget({}, ['node', 'main.js', '--target', 'a', '--port=8080'])).toBe('a');
  });
  test('else FUNCTION_TARGET (Cloud Run functions); none when loaded without one', () => {
    expect(servedTarget({ FUNCTION_TARGET: 'healthSweep' }, ['node', 'main.js'])).toBe('healthSweep');
    expect(servedTarget({ FUNCTION_TARGET: '' }, ['node', 'jest'])).toBeUndefined();
    expect(servedTarget({}, ['node', 'jest'])).toBeUndefined();
  });
});
