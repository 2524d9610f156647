import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { listeningSocket, nodeBareSample, podsockStartSample, stubSample, writeStub, type OwnStartContext } from '../../../scripts/bench/cold-own-start.js';

// Stands in for podsock: checks the socket-activation contract it was started with, waits
// BENCH_DELAY_MS, then spawns "podman run" the way podsock does (through the LISTEN_PID trampoline).
const FAKE_PODSOCK = `
const { spawn } = require('node:child_process');
const { fstatSync } = require('node:fs');
const ok = process.env.LISTEN_PID === String(process.pid) && process.env.LISTEN_FDS === '1' && fstatSync(3).isSocket();
const first = ok ? 'run' : 'bad-activation';
if (process.env.BENCH_GIVE_UP === '1') { console.error('giving up before podman'); process.exit(1); }
setTimeout(() => {
  spawn('/bin/sh', ['-c', 'export LISTEN_PID=$$; exec "$0" "$@"', process.env.PODSOCK_PODMAN, first], { stdio: 'inherit' })
    .on('exit', () => process.exit(1));
}, Number(process.env.BENCH_DELAY_MS ?? 0));
`;

async function setup(t: Test, delayMs: number): Promise<{ ctx: OwnStartContext; fd: number; stub: ReturnType<typeof writeStub> }> {
  const dir = t.testdir({ 'fake-podsock.cjs': FAKE_PODSOCK });
  const sock = await listeningSocket();
  t.teardown(() => sock.close());
  const ctx: OwnStartContext = {
    node: process.execPath,
    podsockMain: join(dir, 'fake-podsock.cjs'),
    config: join(dir, 'unused.container'),
    name: 'bench',
    dir: join(dir, 'own'),
    env: { PATH: process.env.PATH, BENCH_DELAY_MS: String(delayMs) },
  };
  return { ctx, fd: sock.fd, stub: writeStub(ctx.dir) };
}

void t.test('podsockStartSample times spawn to the stub podman run, with LISTEN_PID and fd 3 as systemd gives them', async (t) => {
  const { ctx, fd, stub } = await setup(t, 300);
  const ms = await podsockStartSample(ctx, fd, stub);
  t.ok(ms >= 300, `includes the 300 ms before podman (${ms} ms)`);
  t.ok(ms < 20_000, `not absurdly long (${ms} ms)`);
  const lines = readFileSync(stub.stamps, 'utf8').trim().split('\n');
  t.equal(lines.length, 1);
  t.match(lines[0], /^\d{19} run$/);
});

void t.test('podsockStartSample fails with the process output when podman run never came', async (t) => {
  const { ctx, fd, stub } = await setup(t, 0);
  await t.rejects(podsockStartSample({ ...ctx, env: { ...ctx.env, BENCH_GIVE_UP: '1' } }, fd, stub), { message: "podsock did not start with 'podman run' (stub saw: ''): giving up before podman" });
});

void t.test('nodeBareSample times node -e 0 from spawn to exit', async (t) => {
  const { ctx, fd } = await setup(t, 0);
  const ms = await nodeBareSample(ctx, fd);
  t.ok(ms > 0 && ms < 20_000, `${ms} ms`);
});

void t.test('stubSample times the trampoline and the stub alone, and stamps run', async (t) => {
  const { ctx, fd, stub } = await setup(t, 0);
  const ms = await stubSample(ctx, fd, stub);
  t.ok(ms > 0 && ms < 20_000, `${ms} ms`);
  t.match(readFileSync(stub.stamps, 'utf8'), /^\d{19} run\n$/);
});
