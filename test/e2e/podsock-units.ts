/**
 * Builds podsock services for e2e tests: a `.container` file in a private config directory, a
 * `.socket` unit on a free loopback port, and a `Type=notify` service running the built podsock
 * (dist/bin/podsock.cjs) exactly as a user's unit would, with logs appended to a file.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import net from 'node:net';
import type { Test } from 'tap';
import { containerExists, freePort, installUnits, logFile, repoRoot, systemctl, unitProps, waitFor, type HostEnv } from './harness.js';
import { handoverContainerFile, podsockServiceUnit } from './service-files.js';

export const podsockBin = join(repoRoot, 'dist', 'bin', 'podsock.cjs');
export const podsockLaunch = join(repoRoot, 'build', 'Release', 'podsock-launch');

export interface PodsockServiceOptions {
  /** Lines of the [Container] section besides Image/Network/Volume (e.g. Environment=...). */
  container?: string[];
  /** Lines of the [Podsock] section. */
  podsock?: string[];
  /** Replace the whole .container file text. */
  containerFile?: string;
  /** Extra [Service] lines. */
  service?: string[];
  /** The socket's ListenStream= (default 127.0.0.1 and a free port; `port` and `url` then mean nothing). */
  listen?: string;
  /** UDP: 'only' listens with ListenDatagram= instead of ListenStream=, 'also' with both on the same address. */
  datagram?: 'only' | 'also';
  /** Extra [Socket] lines (after ListenStream). */
  socket?: string[];
  /** Extra arguments for `podsock run NAME`. */
  args?: string[];
  /** Extra units to install along. */
  extraUnits?: Record<string, string>;
  /** Run podsock through podsock-launch, as `podsock generate` writes ExecStart= when it is built. */
  launcher?: boolean;
}

export interface PodsockService {
  name: string;
  port: number;
  log: string;
  configDir: string;
  containerName: string;
  url: (path?: string) => string;
}

/** Install NAME.socket + NAME.service running podsock for a fixture container; returns where it listens. */
export async function installPodsockService(t: Test, h: HostEnv, name: string, o: PodsockServiceOptions = {}): Promise<PodsockService> {
  const port = await freePort();
  const log = logFile(h, name);
  const configDir = join(h.stateDir, 'config', name);
  mkdirSync(configDir, { recursive: true });
  const text = o.containerFile ?? handoverContainerFile(h, name, o);
  writeFileSync(join(configDir, `${name}.container`), text);
  await installUnits(t, h, {
    ...(o.extraUnits ?? {}),
    [`${name}.socket`]: [
      '[Socket]',
      ...(o.datagram === 'only' ? [] : [`ListenStream=${o.listen ?? `127.0.0.1:${port}`}`]),
      ...(o.datagram === undefined ? [] : [`ListenDatagram=${o.listen ?? `127.0.0.1:${port}`}`]),
      ...(o.socket ?? []),
      '',
    ].join('\n'),
    [`${name}.service`]: podsockServiceUnit(name, {
      execStart: `${o.launcher === true ? `${podsockLaunch} ` : ''}${process.execPath} ${podsockBin} run ${name} --log-level debug ${(o.args ?? []).join(' ')}`,
      log,
      containersConf: h.containersConf,
      timeoutStartSec: 60,
      environment: [`Environment=XDG_RUNTIME_DIR=${h.xdgRuntimeDir}`, `Environment=PODSOCK_CONFIG_DIR=${configDir}`],
      extra: o.service ?? [],
    }),
  });
  const containerName = `podsock-${name}`;
  t.teardown(async () => {
    await systemctl(h, 'stop', `${name}.socket`, `${name}.service`);
    await waitFor('the container to be gone', async () => !(await containerExists(h, containerName)), 30_000).catch(() => undefined);
  });
  const started = await systemctl(h, 'start', `${name}.socket`);
  if (started.exitCode !== 0) throw new Error(`cannot start ${name}.socket: ${started.stderr}`);
  return { name, port, log, configDir, containerName, url: (path = '/') => `http://127.0.0.1:${port}${path}` };
}

/** The unit's ActiveState/SubState/Result/MainPID/StatusText and a few more. */
export function serviceState(h: HostEnv, name: string): Promise<Record<string, string>> {
  return unitProps(h, `${name}.service`, [
    'ActiveState',
    'SubState',
    'Result',
    'MainPID',
    'ExecMainPID',
    'ExecMainStatus',
    'ExecMainCode',
    'StatusText',
    'StatusErrno',
    'ActiveEnterTimestampMonotonic',
    'ExecMainStartTimestampMonotonic',
    'InactiveEnterTimestampMonotonic',
    'NRestarts',
  ]);
}

/** Wait until the service is in `state` (ActiveState), returning its properties. */
export function waitState(h: HostEnv, name: string, states: string[], timeoutMs: number): Promise<Record<string, string>> {
  return waitFor(`${name}.service to be ${states.join('|')}`, async () => {
    const s = await serviceState(h, name);
    return states.includes(s.ActiveState ?? '') ? s : false;
  }, timeoutMs, 100);
}

/** Open a raw TCP connection and keep it open; resolves once connected. */
export function holdConnection(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => resolve(s));
    s.once('error', reject);
  });
}
