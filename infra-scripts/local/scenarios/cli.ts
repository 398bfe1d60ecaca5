/**
 * `npm run scenario -- NAME [--status URL]`: asks the running sandbox (through its status page) to
 * run a scenario and prints its report as it goes.
 */
import { isScenario, scenarioNames } from '.';

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const name = args.find((a) => !a.startsWith('--'));
  const statusIndex = args.indexOf('--status');
  const status =
    statusIndex >= 0 ? args[statusIndex + 1] : (process.env.SANDBOX_STATUS_URL ?? 'http://127.0.0.1:8088/');
  if (!name || !isScenario(name) || !status) {
    process.stderr.write(`usage: npm run scenario -- <${scenarioNames.join('|')}> [--status URL]\n`);
    return 2;
  }
  const res = await fetch(new URL(`api/scenarios/${name}`, status), { method: 'POST' }).catch(
    (err: unknown) => {
      process.stderr.write(
        `cannot reach the sandbox at ${status} (is \`npm start\` running?): ${String(err)}\n`,
      );
      return undefined;
    },
  );
  if (!res) return 1;
  if (!res.ok || !res.body) {
    process.stderr.write(`${res.status}: ${await res.text()}`);
    return 1;
  }
  const decoder = new TextDecoder();
  let failed = false;
  for await (const chunk of res.body) {
    const text = decoder.decode(chunk, { stream: true });
    if (text.includes('FAILED:')) failed = true;
    process.stdout.write(text);
  }
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`${String(err)}\n`);
    process.exit(1);
  },
);
