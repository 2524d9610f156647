/**
 * Whether an executable is statically linked: the demo image holds nothing but one busybox binary, so
 * a dynamically linked one (Debian's `busybox` package, as opposed to `busybox-static`) would fail in
 * the container with a bare "no such file or directory" for its missing loader. Pure.
 */

/** What `elfLinkage` found: a static ELF executable, one that needs a loader, or not an ELF file at all. */
export type ElfLinkage = 'static' | 'dynamic' | 'not-elf';

const PT_INTERP = 3;

/**
 * Classify the ELF image in `buf` (the whole file, or at least its header and program header table).
 * An executable is dynamic exactly when it has a PT_INTERP program header naming its loader (elf(5));
 * static-pie binaries have none and count as static. Anything that is not a well-formed ELF header,
 * or whose program header table lies outside `buf`, is 'not-elf'.
 */
export function elfLinkage(buf: Uint8Array): ElfLinkage {
  if (buf.length < 52 || buf[0] !== 0x7f || buf[1] !== 0x45 || buf[2] !== 0x4c || buf[3] !== 0x46) return 'not-elf';
  const is64 = buf[4] === 2;
  if (!is64 && buf[4] !== 1) return 'not-elf';
  const little = buf[5] === 1;
  if (!little && buf[5] !== 2) return 'not-elf';
  if (is64 && buf.length < 64) return 'not-elf';
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const u16 = (off: number): number => view.getUint16(off, little);
  const u32 = (off: number): number => view.getUint32(off, little);
  // e_phoff, e_phentsize, e_phnum (elf(5)); a 64-bit offset beyond 2^53 cannot be inside `buf` anyway.
  const phoff = is64 ? Number(view.getBigUint64(32, little)) : u32(28);
  const phentsize = u16(is64 ? 54 : 42);
  const phnum = u16(is64 ? 56 : 44);
  if (phnum === 0) return 'static';
  if (phentsize < (is64 ? 56 : 32) || phoff + phnum * phentsize > buf.length) return 'not-elf';
  for (let i = 0; i < phnum; i++) {
    if (u32(phoff + i * phentsize) === PT_INTERP) return 'dynamic';
  }
  return 'static';
}
