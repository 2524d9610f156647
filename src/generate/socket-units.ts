/**
 * The .socket units for `podsock generate`: one ListenStream= (ListenDatagram= for `udp:`) per `--listen` address (the forms of
 * src/listeners/listen-address.ts, written the way systemd.socket(5) reads them). A socket unit has one
 * FileDescriptorName= for all its sockets, so addresses with different names (`web=...`,
 * `admin=...`) go to separate units: the first group is NAME.socket, the others NAME-FDNAME.socket,
 * all with Service=NAME.service. Pure.
 */
import type { ListenSpec } from '../listeners/listen-address.js';
import { escapeSpecifiers } from './unit-quote.js';

/** One `--listen` value, parsed, and whether it carried a NAME= prefix. */
export interface ListenInput {
  spec: ListenSpec;
  /** The value as given on the command line. */
  raw: string;
}

/** A generated unit file. */
export interface UnitText {
  /** File name, e.g. 'web.socket'. */
  file: string;
  text: string;
}

/** True when `raw` starts with a NAME= prefix (an unnamed address gets the socket unit's name). */
function isNamed(l: ListenInput): boolean {
  return l.raw.startsWith(`${l.spec.name}=`);
}

/** ListenStream= or ListenDatagram= text for an address: a bare port stays a bare port (all addresses, dual-stack). */
export function listenStreamValue(l: ListenInput): string {
  const s = l.spec;
  if (s.kind === 'unix') return escapeSpecifiers(s.path);
  let addr = isNamed(l) ? l.raw.slice(s.name.length + 1) : l.raw;
  if (s.kind === 'udp') addr = addr.slice('udp:'.length);
  if (/^[0-9]+$/.test(addr)) return String(s.port);
  return s.host.includes(':') ? `[${s.host}]:${s.port}` : `${s.host}:${s.port}`;
}

export interface SocketUnitsInput {
  name: string;
  listens: readonly ListenInput[];
  /** The service the sockets start: 'NAME.service' or 'podsock@NAME.service'. */
  service: string;
  /** Comment lines (without '# ') for the top of each file. */
  header: readonly string[];
}

/** Builds the socket units (see the module comment); at least one when `listens` is not empty. */
export function socketUnits(input: SocketUnitsInput): UnitText[] {
  const groups: Array<{ fdName: string | null; listens: ListenInput[] }> = [];
  for (const l of input.listens) {
    const fdName = isNamed(l) ? l.spec.name : null;
    const g = groups.find((x) => x.fdName === fdName);
    if (g === undefined) groups.push({ fdName, listens: [l] });
    else g.listens.push(l);
  }
  return groups.map((g, i) => {
    const unit = i === 0 ? input.name : `${input.name}-${g.fdName ?? 'default'}`;
    const ownService = `${unit}.service` === input.service;
    const lines = [
      ...input.header.map((l) => `# ${l}`),
      '[Unit]',
      `Description=Sockets of the podsock service ${input.name}`,
      '',
      '[Socket]',
      `# systemd listens here; the first ${g.listens.some((l) => l.spec.kind === 'udp') ? 'connection or datagram' : 'connection'} starts ${input.service}.`,
      ...g.listens.map((l) => `${l.spec.kind === 'udp' ? 'ListenDatagram' : 'ListenStream'}=${listenStreamValue(l)}`),
    ];
    if (g.fdName !== null) {
      lines.push("# The name the container sees in LISTEN_FDNAMES (and that Backend=NAME=PORT refers to).", `FileDescriptorName=${g.fdName}`);
    }
    if (!ownService) lines.push(`Service=${input.service}`);
    lines.push('', '[Install]', '# `systemctl enable` this socket, not the service: the socket starts the service.', 'WantedBy=sockets.target', '');
    return { file: `${unit}.socket`, text: lines.join('\n') };
  });
}
