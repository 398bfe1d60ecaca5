import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

import { repoRoot } from '../launch/tools';

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function newestSource(root: string): Promise<number> {
  let newest = 0;
  for (const dir of ['services', 'shared']) {
    for (const file of await readdir(path.join(root, dir), { recursive: true })) {
      if (file.endsWith('.ts')) newest = Math.max(newest, (await stat(path.join(root, dir, file))).mtimeMs);
    }
  }
  return newest;
}

/**
 * Instances run the apps from dist/ (as the images do), and `npm test` does not build: rebuild when
 * a source under services/ or shared/ is newer than the build. One build at a time across test files.
 */
export async function ensureAppsBuilt(): Promise<void> {
  const root = repoRoot();
  const marker = path.join(root, 'dist/services/backend/main.js');
  const fresh = async () =>
    ((await stat(marker).catch(() => undefined))?.mtimeMs ?? 0) >= (await newestSource(root));
  if (await fresh()) return;
  const lock = path.join(root, 'dist/.apps-build.lock');
  await mkdir(path.dirname(lock), { recursive: true });
  for (let waited = 0; ; waited += 200) {
    try {
      await mkdir(lock);
      break;
    } catch {
      // Held by another test file; a lock older than any build is left over from a killed run.
      const age = Date.now() - ((await stat(lock).catch(() => undefined))?.mtimeMs ?? Date.now());
      if (age > 180_000) await rm(lock, { recursive: true, force: true });
      await sleep(200);
    }
  }
  try {
    if (await fresh()) return;
    await run(
      process.execPath,
      [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'],
      {
        cwd: root,
        maxBuffer: 16 << 20,
      },
    ).catch((err: { stdout?: string }) => {
      // tsc still emits when another part of the tree has type errors; only a missing app is fatal.
      if (!existsSync(marker)) throw new Error(`build failed:\n${err.stdout ?? ''}`);
    });
  } finally {
    await rm(lock, { recursive: true, force: true });
  }
}
