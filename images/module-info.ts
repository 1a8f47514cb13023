import { SwpkgError } from '../catalog/index.js';

/** What the loader needs from a kernel module's `.modinfo` section. */
export interface ModuleInfo {
  /** Module name as the kernel knows it (`-` in file names becomes `_`). */
  name: string;
  /** Names from `depends=`, in the order the module lists them. */
  depends: string[];
  /** `vermagic=`: must start with the kernel release the module is loaded into. */
  vermagic: string;
  /** Every `key=value` of the section; keys may repeat (alias, parm). */
  fields: Array<[string, string]>;
}

const ELF_MAGIC = [0x7f, 0x45, 0x4c, 0x46];

/**
 * Reads the `.modinfo` section of an x86-64 kernel module (ELF64, little
 * endian). Debian's kernel package ships no `modules.dep`, so this is where
 * the load order comes from; the host may have no `modinfo` (kmod) at all.
 * Bytes are untrusted: every offset is bounds-checked before it is read.
 */
export function readModuleInfo(bytes: Uint8Array, source: string): ModuleInfo {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const bad = (why: string): SwpkgError =>
    new SwpkgError('E_CORRUPT', `${source} is not a readable kernel module: ${why}`, { details: { source } });
  if (buf.length < 64 || ELF_MAGIC.some((b, i) => buf[i] !== b)) throw bad('no ELF header');
  if (buf[4] !== 2 || buf[5] !== 1) throw bad('not ELF64 little-endian');
  const shoff = Number(buf.readBigUInt64LE(0x28));
  const shentsize = buf.readUInt16LE(0x3a);
  const shnum = buf.readUInt16LE(0x3c);
  const shstrndx = buf.readUInt16LE(0x3e);
  if (shentsize < 64 || shstrndx >= shnum || shoff + shnum * shentsize > buf.length) throw bad('section table out of range');
  const section = (i: number): { name: number; offset: number; size: number } => {
    const base = shoff + i * shentsize;
    return {
      name: buf.readUInt32LE(base),
      offset: Number(buf.readBigUInt64LE(base + 24)),
      size: Number(buf.readBigUInt64LE(base + 32)),
    };
  };
  const names = section(shstrndx);
  if (names.offset + names.size > buf.length) throw bad('section names out of range');
  const nameAt = (off: number): string => {
    const start = names.offset + off;
    const end = buf.indexOf(0, start);
    if (off >= names.size || end < 0 || end > names.offset + names.size) throw bad('section name out of range');
    return buf.toString('latin1', start, end);
  };
  for (let i = 0; i < shnum; i++) {
    const s = section(i);
    if (nameAt(s.name) !== '.modinfo') continue;
    if (s.offset + s.size > buf.length) throw bad('.modinfo out of range');
    const fields: Array<[string, string]> = [];
    for (const entry of buf.toString('latin1', s.offset, s.offset + s.size).split('\0')) {
      const eq = entry.indexOf('=');
      if (eq > 0) fields.push([entry.slice(0, eq), entry.slice(eq + 1)]);
    }
    const get = (k: string): string | undefined => fields.find(([key]) => key === k)?.[1];
    const name = get('name');
    if (name === undefined) throw bad('.modinfo has no name=');
    const depends = (get('depends') ?? '').split(',').filter((d) => d.length > 0);
    return { name, depends, vermagic: get('vermagic') ?? '', fields };
  }
  throw bad('no .modinfo section');
}

/**
 * Orders modules so each comes after everything it depends on. Ties keep the
 * order of `wanted` (the pin file's list), so the result is stable. A
 * dependency outside the set, or a cycle, is refused: insmod would fail in
 * the guest with far less to go on.
 */
export function moduleLoadOrder(wanted: readonly string[], infos: ReadonlyMap<string, ModuleInfo>): string[] {
  const order: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (name: string, chain: string[]): void => {
    const st = state.get(name);
    if (st === 'done') return;
    if (st === 'visiting') {
      throw new SwpkgError('E_INVALID_MANIFEST', `kernel modules depend on each other in a cycle: ${[...chain, name].join(' -> ')}`, {
        details: { cycle: [...chain, name] },
      });
    }
    const info = infos.get(name);
    if (info === undefined) {
      const parent = chain[chain.length - 1];
      throw new SwpkgError(
        'E_INVALID_MANIFEST',
        `kernel module ${name}${parent ? ` (needed by ${parent})` : ''} is not in the module list`,
        {
          hint: `add "${name}" to "modules" in kernel/kernel.json`,
          details: { module: name, neededBy: parent ?? null },
        },
      );
    }
    state.set(name, 'visiting');
    for (const dep of info.depends) visit(dep, [...chain, name]);
    state.set(name, 'done');
    order.push(name);
  };
  for (const name of wanted) visit(name, []);
  return order;
}
