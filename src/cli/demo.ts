/**
 * `podsock demo [--port N] [--idle-timeout SPAN] [--interactive]`: podsock on a built-in example,
 * narrated. Builds (or reuses) a tiny local image with busybox httpd, runs `podsock run` standalone
 * in proxy mode on a loopback port with a short idle timeout, makes requests itself and prints, as
 * they happen, the lazy start on the first connection, the time to the first byte, the idle stop and
 * the cold start after it. Ends by stopping podsock with SIGTERM and checking that no container is
 * left. With --interactive it then keeps podsock running until Ctrl-C.
 * CLI layer: uses process.* (signals, stdout, uid, the node binary).
 */
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { defaultContainerName } from '../config/load.js';
import { formatTimespan, parseTimespan } from '../config/timespan.js';
import { DEMO_CONTAINER_PORT, DEMO_IMAGE, DEMO_PAGE, ensureDemoImage, findBusybox } from '../demo/image.js';
import { timedGet } from '../demo/http-get.js';
import { firstByteLine, Narrator } from '../demo/narrate.js';
import { describeExit, PodsockChild } from '../demo/podsock-child.js';
import { findRootlessNetworkHelper } from '../demo/rootless-net.js';
import { PodsockError, q } from '../errors.js';
import { podmanCommand, resolvePodman, type Podman } from '../runtime/podman.js';
import { scrubbedEnv } from '../sd/listen-fds.js';
import { flag, parseArgs, type FlagSpec } from './args.js';

/** The demo's command-line flags (see USAGE.demo). */
export const DEMO_FLAGS: Record<string, FlagSpec> = {
  port: { value: true },
  'idle-timeout': { value: true },
  interactive: { value: false },
  name: { value: true },
  help: { value: false, short: 'h' },
};

/** The port the demo listens on unless --port is given or it is taken (then any free port). */
export const DEMO_DEFAULT_PORT = 8089;
const DEFAULT_IDLE = '3s';
const HOST = '127.0.0.1';
/** Bounds on each step; generous, a first start on a loaded machine can take seconds. */
const START_TIMEOUT = '60s';
const REQUEST_TIMEOUT_MS = 90_000;
const LISTEN_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 60_000;
/** Signals that end the demo; each stops podsock first. */
const SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/** What `podsock demo` gets from main.ts: its arguments, the environment, and where to print. */
export interface DemoInput {
  argv: string[];
  env: NodeJS.ProcessEnv;
  /** Where the demo's lines go (one call per line, without the newline). */
  out: (line: string) => void;
}

/** The parsed command line; idleText is the idle timeout in systemd's normal form. */
interface DemoOptions {
  port: number | null;
  idleMs: number;
  idleText: string;
  interactive: boolean;
  name: string;
}

function usage(what: string): PodsockError {
  return new PodsockError('PODSOCK_ERR_USAGE', `podsock demo: ${what} (see 'podsock demo --help')`);
}

/**
 * Parse and check the command line: --port 1-65535 (null: default), --idle-timeout a finite non-zero
 * time span (default 3s), --name a podman-safe name (default demo). Pure; throws PODSOCK_ERR_USAGE, or
 * PODSOCK_ERR_TIMESPAN for a malformed span.
 */
export function demoOptions(argv: readonly string[]): DemoOptions {
  const p = parseArgs(argv, DEMO_FLAGS, 'demo');
  if (p.positionals.length > 0 || p.passthrough.length > 0) throw usage(`unexpected argument ${q(p.positionals[0] ?? '--')}`);
  const portText = flag(p, 'port');
  let port: number | null = null;
  if (portText !== undefined) {
    port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
    if (!(port >= 1 && port <= 65535)) throw usage(`--port expects a TCP port (1-65535), got ${q(portText)}`);
  }
  const idleText = flag(p, 'idle-timeout') ?? DEFAULT_IDLE;
  const idleMs = parseTimespan(idleText, '--idle-timeout');
  if (idleMs === null || idleMs === 0) throw usage(`--idle-timeout must be a finite, non-zero time span, got ${q(idleText)}`);
  const name = flag(p, 'name') ?? 'demo';
  if (!/^[a-z0-9][a-z0-9_.-]{0,62}$/.test(name)) throw usage(`--name expects a name of lower-case letters, digits, '_', '.' and '-', got ${q(name)}`);
  return { port, idleMs, idleText: formatTimespan(idleMs), interactive: flag(p, 'interactive') !== undefined, name };
}

/** Whether `port` on 127.0.0.1 can be bound right now (a moment later it may not be). */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen({ host: HOST, port, exclusive: true }, () => s.close(() => resolve(true)));
  });
}

function anyFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen({ host: HOST, port: 0, exclusive: true }, () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a !== null ? a.port : 0));
    });
  });
}

async function choosePort(o: DemoOptions, out: (line: string) => void): Promise<number> {
  if (o.port !== null) {
    if (!(await portFree(o.port))) {
      throw new PodsockError('PODSOCK_ERR_LISTEN', `Port ${o.port} on ${HOST} is in use: pick another with --port N`);
    }
    return o.port;
  }
  if (await portFree(DEMO_DEFAULT_PORT)) return DEMO_DEFAULT_PORT;
  const port = await anyFreePort();
  out(`podsock demo: port ${DEMO_DEFAULT_PORT} is in use, using ${port}`);
  return port;
}

async function containerExists(podman: Podman, name: string): Promise<boolean> {
  const r = await podmanCommand(podman, ['container', 'exists', name]);
  if (r.exitCode === 0) return true;
  if (r.exitCode === 1) return false;
  throw new PodsockError('PODSOCK_ERR_PODMAN', `'podman container exists ${name}' failed: ${r.stderr.trim()} (podman exit ${r.exitCode})`);
}

/** Check a reply is the demo page; PODSOCK_ERR_DEMO otherwise. */
function checkReply(url: string, reply: { status: number; body: string }): void {
  if (reply.status !== 200 || reply.body !== DEMO_PAGE) {
    throw new PodsockError('PODSOCK_ERR_DEMO', `GET ${q(url)} answered ${reply.status} ${q(reply.body.slice(0, 200))}, expected 200 ${q(DEMO_PAGE.trim())}`);
  }
}

/**
 * Run the demo; resolves with the exit status: 0 when everything happened as narrated, 130 when a
 * signal ended it (podsock stopped first). Failures throw PodsockError (PODSOCK_ERR_DEMO when the demo
 * did not see what it expected, PODSOCK_ERR_DEMO_SETUP / PODSOCK_ERR_PODMAN_MISSING when something is
 * missing, PODSOCK_ERR_PODMAN when the image cannot be built) after podsock and its container are gone.
 */
export async function demoCommand(input: DemoInput): Promise<number> {
  // A closed stdout (`podsock demo | head`) must not end the demo before it has stopped podsock: from
  // the first failed write on, lines are dropped and the demo finishes and cleans up as usual.
  let quiet = false;
  const onStdoutError = (): void => {
    quiet = true;
  };
  process.stdout.on('error', onStdoutError);
  try {
    return await demo(input, (line) => {
      if (!quiet) input.out(line);
    });
  } finally {
    process.stdout.off('error', onStdoutError);
  }
}

async function demo(input: DemoInput, out: (line: string) => void): Promise<number> {
  const o = demoOptions(input.argv);
  const env = scrubbedEnv(input.env);
  const podman = resolvePodman(env);
  const uid = process.getuid?.() ?? 0;
  if (uid !== 0 && findRootlessNetworkHelper(env) === null) {
    throw new PodsockError(
      'PODSOCK_ERR_DEMO_SETUP',
      'Rootless podman needs slirp4netns (or pasta) to publish the demo container\'s port on 127.0.0.1, and neither was found: install slirp4netns (apt-get install slirp4netns)',
    );
  }
  const busybox = findBusybox(env);
  if (busybox === null) {
    throw new PodsockError('PODSOCK_ERR_DEMO_SETUP', 'busybox was not found on PATH: the demo image is built from a static busybox; install the busybox-static package');
  }
  const t0 = Date.now();
  const img = await ensureDemoImage(podman, busybox);
  out(img.built ? `podsock demo: built image ${DEMO_IMAGE} from ${busybox} in ${Date.now() - t0} ms` : `podsock demo: image ${DEMO_IMAGE} is up to date`);

  const port = await choosePort(o, out);
  const url = `http://${HOST}:${port}`;
  const container = defaultContainerName(o.name);
  const args = [
    'run', o.name, '--listen', `${HOST}:${port}`, '--mode', 'proxy', '--backend', String(DEMO_CONTAINER_PORT),
    '--ready', 'http:/', '--idle-timeout', o.idleText, '--start-timeout', START_TIMEOUT, '--log-level', 'debug',
    '--', '--pull=never', DEMO_IMAGE,
  ];
  out(`podsock demo: podsock ${args.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : q(a))).join(' ')}`);

  const narrator = new Narrator({ url, idleText: o.idleText });
  const child = new PodsockChild({
    node: process.execPath,
    // The script that is running now (the bundled executable, or main.js from the TypeScript build).
    main: process.argv[1] ?? fileURLToPath(new URL('./main.js', import.meta.url)),
    args,
    env,
    onEvent: (ev) => {
      const line = narrator.line(ev);
      if (line !== null) out(line);
    },
  });
  let interrupted: NodeJS.Signals | null = null;
  const onSignal = (sig: NodeJS.Signals): void => {
    interrupted ??= sig;
    void child.stop(STOP_TIMEOUT_MS);
  };
  // podsock runs in its own process group (podsock-child.ts), so these reach only the demo.
  for (const sig of SIGNALS) process.on(sig, onSignal);

  const request = async (title: string, expectStart: boolean): Promise<void> => {
    out(`→ ${title}: GET ${url}/`);
    const [reply] = await Promise.all([
      timedGet(HOST, port, '/', REQUEST_TIMEOUT_MS),
      expectStart ? child.next('ready', REQUEST_TIMEOUT_MS, 'the container to be ready') : null,
    ]);
    checkReply(`${url}/`, reply);
    out(firstByteLine('  ', reply.firstByteMs, reply.body));
  };

  try {
    await child.next('listening', LISTEN_TIMEOUT_MS, 'podsock to listen');
    out(`  (try it from another terminal: curl ${url}/)`);
    await request('first request', true);
    const warm = await timedGet(HOST, port, '/', REQUEST_TIMEOUT_MS);
    checkReply(`${url}/`, warm);
    out(firstByteLine('→ again while it runs: ', warm.firstByteMs, warm.body));
    out(`waiting for ${o.idleText} without connections...`);
    await child.next('idle', o.idleMs + LISTEN_TIMEOUT_MS, 'the idle stop');
    await child.next('listening', STOP_TIMEOUT_MS, 'podsock to stop the container and listen again');
    if (await containerExists(podman, container)) {
      throw new PodsockError('PODSOCK_ERR_DEMO', `Container ${q(container)} still exists after the idle stop`);
    }
    await request('second request (cold start again)', true);
    if (o.interactive) {
      out(`your turn: curl ${url}/ (the container starts on the first connection and stops after ${o.idleText} idle); Ctrl-C to stop`);
      await child.exited;
    }
    if (interrupted === null) out('stopping podsock (SIGTERM)...');
    const exit = await child.stop(STOP_TIMEOUT_MS);
    if (exit.code !== 0) throw new PodsockError('PODSOCK_ERR_DEMO', `podsock exited with ${describeExit(exit)}${child.context()}`);
    if (await containerExists(podman, container)) {
      throw new PodsockError('PODSOCK_ERR_DEMO', `Container ${q(container)} still exists after podsock exited`);
    }
    out('podsock exited with status 0; no container left');
    out('done.');
    return 0;
  } catch (err) {
    await child.stop(STOP_TIMEOUT_MS);
    // podsock removes its container when it stops; this covers a podsock that was killed.
    await podmanCommand(podman, ['rm', '--force', '--ignore', container]).catch(() => undefined);
    if (interrupted !== null) {
      out(`interrupted (${interrupted}); podsock stopped`);
      return 130;
    }
    throw err;
  } finally {
    for (const sig of SIGNALS) process.off(sig, onSignal);
  }
}
