// A minimal DNS client for tests of UDP proxying (RFC 1035 section 4.1): one A question per query, and the
// parts of the answer a test checks (the id, the question's name, the first A record).
import { createSocket, type Socket } from 'node:dgram';

/** What dnsmasq answers for every name under podsock.test (DNSMASQ_EXEC). */
export const DNSMASQ_ANSWER = '10.1.2.3';

/**
 * Debian's dnsmasq as a container's command (the host's /usr is mounted in the fixture image), on port
 * 5353 over UDP and TCP on every address: -k stays in the foreground, nothing read from the host's
 * resolv.conf or hosts, and any name under podsock.test is DNSMASQ_ANSWER.
 */
export const DNSMASQ_EXEC = `/usr/sbin/dnsmasq -k --log-facility=- --port=5353 --no-resolv --no-hosts --user=root --pid-file --address=/podsock.test/${DNSMASQ_ANSWER}`;

/** A standard query for the A record of `name`, with recursion desired. */
export function dnsQuery(id: number, name: string): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(0x0100, 2); // RD
  header.writeUInt16BE(1, 4); // QDCOUNT
  const labels = name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'ascii')]));
  const tail = Buffer.alloc(4);
  tail.writeUInt16BE(1, 0); // QTYPE A
  tail.writeUInt16BE(1, 2); // QCLASS IN
  return Buffer.concat([header, ...labels, Buffer.from([0]), tail]);
}

export interface DnsAnswer {
  id: number;
  /** The QR bit: this is a response. */
  response: boolean;
  rcode: number;
  name: string;
  /** The address of the first A record, or null. */
  address: string | null;
}

/** Reads a response to dnsQuery(); throws on a malformed one. Names in the answer are expected compressed. */
export function parseDnsAnswer(b: Buffer): DnsAnswer {
  if (b.length < 12) throw new Error(`DNS message of ${b.length} bytes`);
  const flags = b.readUInt16BE(2);
  const ancount = b.readUInt16BE(6);
  let i = 12;
  const labels: string[] = [];
  for (;;) {
    const n = b[i++];
    if (n === undefined) throw new Error('DNS question name runs past the message');
    if (n === 0) break;
    labels.push(b.subarray(i, i + n).toString('ascii'));
    i += n;
  }
  i += 4;
  let address: string | null = null;
  for (let a = 0; a < ancount && address === null; a++) {
    if (b[i] !== undefined && (b[i]! & 0xc0) === 0xc0) i += 2;
    else throw new Error('DNS answer name is not compressed');
    const type = b.readUInt16BE(i);
    const rdlength = b.readUInt16BE(i + 8);
    i += 10;
    if (type === 1 && rdlength === 4) address = [...b.subarray(i, i + 4)].join('.');
    i += rdlength;
  }
  return { id: b.readUInt16BE(0), response: (flags & 0x8000) !== 0, rcode: flags & 0xf, name: labels.join('.'), address };
}

/**
 * Sends one query from a socket of its own (or from `socket`, which stays open: one flow for many
 * queries) and resolves with the answer, retrying every `retryMs` (as a resolver does) until
 * `timeoutMs`; `tries` counts the queries sent.
 */
export async function resolveA(
  host: string,
  port: number,
  name: string,
  o: { retryMs?: number; timeoutMs?: number; socket?: Socket } = {},
): Promise<DnsAnswer & { tries: number }> {
  const sock: Socket = o.socket ?? createSocket(host.includes(':') ? 'udp6' : 'udp4');
  const id = Math.floor(Math.random() * 0x10000);
  const query = dnsQuery(id, name);
  let tries = 0;
  try {
    return await new Promise((resolve, reject) => {
      const send = (): void => {
        tries++;
        sock.send(query, port, host);
      };
      const retry = setInterval(send, o.retryMs ?? 2000);
      const deadline = setTimeout(() => {
        clearInterval(retry);
        reject(new Error(`no answer for ${name} from ${host}:${port} after ${tries} queries`));
      }, o.timeoutMs ?? 30_000);
      const onMessage = (m: Buffer): void => {
        const a = parseDnsAnswer(m);
        if (a.id !== id) return;
        done();
        resolve({ ...a, tries });
      };
      const onError = (e: Error): void => {
        done();
        reject(e);
      };
      const done = (): void => {
        clearInterval(retry);
        clearTimeout(deadline);
        sock.off('message', onMessage);
        sock.off('error', onError);
      };
      sock.on('message', onMessage);
      sock.on('error', onError);
      send();
    });
  } finally {
    if (o.socket === undefined) sock.close();
  }
}
