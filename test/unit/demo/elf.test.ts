import { readFileSync } from 'node:fs';
import t from 'tap';
import { elfLinkage } from '../../../src/demo/elf.js';

/** A minimal ELF header with program headers of the given types (elf(5) layout). */
function elf(opts: { is64: boolean; little: boolean; types: number[]; truncate?: number }): Uint8Array {
  const ehsize = opts.is64 ? 64 : 52;
  const phentsize = opts.is64 ? 56 : 32;
  const buf = new Uint8Array(ehsize + phentsize * opts.types.length);
  const v = new DataView(buf.buffer);
  buf.set([0x7f, 0x45, 0x4c, 0x46, opts.is64 ? 2 : 1, opts.little ? 1 : 2, 1]);
  if (opts.is64) v.setBigUint64(32, BigInt(ehsize), opts.little);
  else v.setUint32(28, ehsize, opts.little);
  v.setUint16(opts.is64 ? 54 : 42, phentsize, opts.little);
  v.setUint16(opts.is64 ? 56 : 44, opts.types.length, opts.little);
  opts.types.forEach((type, i) => v.setUint32(ehsize + i * phentsize, type, opts.little));
  return opts.truncate === undefined ? buf : buf.subarray(0, opts.truncate);
}

const PT_LOAD = 1;
const PT_INTERP = 3;
const PT_NOTE = 4;

void t.test('a PT_INTERP header makes an executable dynamic, in every ELF flavour', async (t) => {
  for (const is64 of [true, false]) {
    for (const little of [true, false]) {
      const what = `${is64 ? 64 : 32}-bit ${little ? 'LE' : 'BE'}`;
      t.equal(elfLinkage(elf({ is64, little, types: [PT_LOAD, PT_INTERP, PT_LOAD] })), 'dynamic', what);
      t.equal(elfLinkage(elf({ is64, little, types: [PT_LOAD, PT_NOTE, PT_LOAD] })), 'static', what);
    }
  }
  t.equal(elfLinkage(elf({ is64: true, little: true, types: [] })), 'static', 'no program headers');
});

void t.test('anything else is not-elf', async (t) => {
  t.equal(elfLinkage(new Uint8Array(0)), 'not-elf');
  t.equal(elfLinkage(Buffer.from('#!/bin/sh\necho hello, this is a script and not an ELF file\n')), 'not-elf');
  const bad = elf({ is64: true, little: true, types: [PT_LOAD] });
  bad[4] = 3;
  t.equal(elfLinkage(bad), 'not-elf', 'bad class');
  t.equal(elfLinkage(elf({ is64: true, little: true, types: [PT_LOAD, PT_INTERP], truncate: 64 + 56 })), 'not-elf', 'program headers cut off');
});

void t.test('real binaries on this machine', async (t) => {
  t.equal(elfLinkage(readFileSync(process.execPath)), 'dynamic', `node (${process.execPath}) is dynamically linked`);
  let busybox: Buffer | null = null;
  try {
    busybox = readFileSync('/bin/busybox');
  } catch {
    // not installed here
  }
  if (busybox === null) t.pass('no /bin/busybox', { skip: 'busybox-static is not installed' });
  else t.equal(elfLinkage(busybox), 'static', "Debian's busybox-static is static");
});
