import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { SwpkgError, fromFsError } from '../catalog/index.js';
import { runTool } from './host-tools.js';

/** One file put on the ESP: a host file, or literal text (loader.conf, entries). */
export type EspFile = { dest: string; source: string } | { dest: string; text: string };

export interface EspImageOptions {
  out: string;
  sizeMiB: number;
  files: readonly EspFile[];
  /** FAT volume id (8 hex digits) for reproducible images. */
  volumeId?: string;
}

/** ESP paths are FAT paths we choose: plain ASCII components, no `..`, rooted. */
const ESP_PATH = /^(\/[A-Za-z0-9._+-]+)+$/;

function checkEspPath(p: string): void {
  if (!ESP_PATH.test(p) || p.split('/').some((c) => c === '.' || c === '..')) {
    throw new SwpkgError('E_UNSAFE_PATH', `not a plain ESP path: ${JSON.stringify(p)}`, { details: { path: p } });
  }
}

/**
 * Makes a FAT32 EFI system partition image without mounting: `mkfs.vfat -C`
 * then mtools (`mmd`, `mcopy`), which write into the image file directly. The
 * file appears under its name only when complete.
 */
export async function makeEspImage(o: EspImageOptions): Promise<void> {
  // FAT32 needs at least 65525 clusters: 33 MiB at 512-byte clusters is mkfs.vfat's floor.
  if (!Number.isInteger(o.sizeMiB) || o.sizeMiB < 34) {
    throw new SwpkgError('E_USAGE', `an ESP needs at least 34 MiB, got ${o.sizeMiB}`, { details: { sizeMiB: o.sizeMiB } });
  }
  for (const f of o.files) checkEspPath(f.dest);
  await mkdir(dirname(o.out), { recursive: true });
  const tmp = join(dirname(o.out), `.${basename(o.out)}.${process.pid}.tmp`);
  const scratch = `${tmp}.d`;
  await rm(tmp, { force: true });
  // mtools refuses images whose geometry it cannot map to a floppy or disk it knows unless told not to check.
  const env = { MTOOLS_SKIP_CHECK: '1', MTOOLS_NO_VFAT: '0' };
  try {
    await runTool(
      'mkfs.vfat',
      ['-C', '-F', '32', '-S', '512', '-n', 'SWPKG-ESP', ...(o.volumeId ? ['-i', o.volumeId] : []), tmp, String(o.sizeMiB * 1024)],
      { timeoutMs: 60_000, what: 'making the ESP' },
    );
    const dirs = new Set<string>();
    for (const f of o.files) {
      const parts = f.dest.split('/').slice(1, -1);
      for (let i = 1; i <= parts.length; i++) dirs.add(`/${parts.slice(0, i).join('/')}`);
    }
    const sorted = [...dirs].sort((a, b) => a.split('/').length - b.split('/').length || a.localeCompare(b));
    if (sorted.length > 0) {
      await runTool('mmd', ['-i', tmp, ...sorted.map((d) => `::${d}`)], { timeoutMs: 60_000, env, what: 'making ESP folders' });
    }
    await mkdir(scratch, { recursive: true });
    for (const [i, f] of o.files.entries()) {
      let src: string;
      if ('source' in f) src = f.source;
      else {
        src = join(scratch, String(i));
        await writeFile(src, f.text);
      }
      await runTool('mcopy', ['-i', tmp, '-o', src, `::${f.dest}`], { timeoutMs: 120_000, env, what: `copying ${f.dest} onto the ESP` });
    }
    await rename(tmp, o.out);
  } catch (e) {
    await rm(tmp, { force: true });
    if ((e as NodeJS.ErrnoException).code === 'ENOSPC') throw fromFsError(e, `writing ${o.out}`);
    if (e instanceof SwpkgError && /Disk full|No free cluster/i.test(typeof e.details?.stderr === 'string' ? e.details.stderr : '')) {
      throw new SwpkgError('E_DISK_FULL', `the ${o.sizeMiB} MiB ESP is too small for its files`, {
        hint: 'give the ESP more room (espSizeMiB)',
        details: { sizeMiB: o.sizeMiB },
        cause: e,
      });
    }
    throw e;
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
