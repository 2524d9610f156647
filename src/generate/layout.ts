/**
 * Where generated files belong (`--user` or `--system`), how the service finds NAME.container, how
 * the unit runs podsock itself, and the next steps printed after `podsock generate`. Pure: the CLI
 * passes the facts it looked up (paths, PATH, uid).
 */
import { dirname } from 'node:path';
import { escapeSpecifiers, quoteWord } from './unit-quote.js';
import { shellQuote } from '../runtime/podman-argv.js';

export type Scope = 'user' | 'system';

/** Where units and NAME.container go for a scope. */
export interface Layout {
  scope: Scope;
  /** Unit directory, for people ('~/.config/systemd/user' or '/etc/systemd/system'). */
  unitDir: string;
  /** Directory of NAME.container, for people. */
  configDir: string;
  /** The path of NAME.container as unit-file text (specifiers allowed). */
  configInUnit: string;
  /** 'systemctl --user' or 'systemctl'. */
  systemctl: string;
}

/**
 * The layout for `scope`. `configDir` overrides where NAME.container is installed (an absolute path);
 * by default it is ~/.config/podsock (written as %h/.config/podsock in the unit) or /etc/podsock.
 */
export function layoutFor(scope: Scope, name: string, configDir: string | null): Layout {
  const file = `${name}.container`;
  if (scope === 'user') {
    return {
      scope,
      unitDir: '~/.config/systemd/user',
      configDir: configDir ?? '~/.config/podsock',
      configInUnit: configDir === null ? `%h/.config/podsock/${file}` : quoteWord(escapeSpecifiers(`${configDir}/${file}`)),
      systemctl: 'systemctl --user',
    };
  }
  const dir = configDir ?? '/etc/podsock';
  return { scope, unitDir: '/etc/systemd/system', configDir: dir, configInUnit: quoteWord(escapeSpecifiers(`${dir}/${file}`)), systemctl: 'systemctl' };
}

/** The PATH a systemd manager gives services (systemd.exec(5), "Environment variables"). */
export const SYSTEMD_PATH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/** What the CLI found out about the running podsock. */
export interface SelfFacts {
  /** realpath of the running main script (process.argv[1]). */
  script: string;
  /** node's own path (process.execPath). */
  execPath: string;
  /** The first `podsock` on PATH, or null. */
  onPath: string | null;
  /** realpath of `onPath`, or null. */
  onPathTarget: string | null;
  /** podsock-launch, built beside the addon, when it is there (starts podman before node: native/launch.c). */
  launcher?: string | null;
}

/**
 * The command a unit uses to run podsock: podsock-launch with node and the script when it was built
 * (the fastest cold start: podman starts from the last activation's plan while node boots), else `podsock` from PATH when it is this same podsock and its
 * `#!/usr/bin/env node` will find node in the service's PATH; otherwise node and the script by
 * absolute path, which also works for `npx podsock` and `node dist/bin/podsock.cjs`.
 */
export function podsockCommand(f: SelfFacts): string[] {
  if (f.launcher !== undefined && f.launcher !== null) return [f.launcher, f.execPath, f.script];
  if (f.onPath !== null && f.onPathTarget === f.script && SYSTEMD_PATH.includes(dirname(f.execPath))) return [f.onPath];
  return [f.execPath, f.script];
}

export interface NextStepsInput {
  name: string;
  layout: Layout;
  /** Unit file names written or printed (sockets first). */
  units: readonly string[];
  /** The directory the files were written to, or null when they were printed. */
  outputDir: string | null;
  /** The socket units start podsock@NAME.service (units/podsock@.service) instead of NAME.service. */
  template: boolean;
  /** generate runs as root: system steps need no sudo. */
  root?: boolean;
}

/** The text printed after generating: where to copy the files and the systemctl commands. */
export function nextSteps(i: NextStepsInput): string {
  const { layout: l } = i;
  const sudo = l.scope === 'system' && i.root !== true ? 'sudo ' : '';
  const from = (f: string): string => (i.outputDir === null ? f : shellQuote([`${i.outputDir}/${f}`]));
  const unitFiles = i.units.map(from);
  if (i.template) unitFiles.push('podsock@.service');
  const lines = [
    'Next steps:',
    i.outputDir === null ? `  # save the files above under their names in the current directory, then:` : null,
    `  ${sudo}install -d ${l.unitDir} ${l.configDir}`,
    `  ${sudo}install -m 644 ${unitFiles.join(' ')} ${l.unitDir}/`,
    i.template ? '  # podsock@.service is in the units/ directory of the podsock package' : null,
    `  ${sudo}install -m 644 ${from(`${i.name}.container`)} ${l.configDir}/`,
    `  podsock check ${i.name} --config ${l.configDir.startsWith('~') ? `${l.configDir}/${i.name}.container` : shellQuote([`${l.configDir}/${i.name}.container`])}`,
    `  ${sudo}${l.systemctl} daemon-reload`,
    `  ${sudo}${l.systemctl} enable --now ${i.units.filter((u) => u.endsWith('.socket')).join(' ')}`,
    l.scope === 'user' ? '  loginctl enable-linger "$USER"   # keep the socket listening while you are logged out' : null,
    '',
  ];
  return lines.filter((x) => x !== null).join('\n');
}
