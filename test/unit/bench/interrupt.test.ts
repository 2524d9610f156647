import { spawn } from 'node:child_process';
import t from 'tap';

// A child that installs the handlers, reports once armed, and, when the signal came, tries the check.
const CHILD = `
  const { cleanUpOnSignals } = await import(${JSON.stringify(new URL('../../../scripts/bench/interrupt.ts', import.meta.url).href)});
  const check = cleanUpOnSignals(async () => {
    try { check(); console.log('check passed'); } catch (err) { console.log('check: ' + err.message); }
    console.log('cleaned up');
  });
  check();
  console.log('armed');
  setTimeout(() => process.exit(0), 60000);
`;

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  void t.test(`${sig}: the cleanup runs, later checks throw, exit 130`, async (t) => {
    const child = spawn(process.execPath, [...process.execArgv, '--input-type=module', '-e', CHILD], { stdio: ['ignore', 'pipe', 'pipe'] });
    t.teardown(() => child.kill('SIGKILL'));
    let out = '';
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    await new Promise<void>((resolve) =>
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('armed\n')) resolve();
      }),
    );
    child.kill(sig);
    const status = await new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    t.equal(status, 130);
    t.equal(out, `armed\ncheck: Interrupted by ${sig}\ncleaned up\n`);
    t.match(err, `${sig}: removing the benchmark's units and containers`);
  });
}
