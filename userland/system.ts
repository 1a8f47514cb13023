import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import {
  SwpkgError,
  assertRootCurrent,
  fromFsError,
  systemReleasePath,
  MAX_SYSTEM_RELEASE_BYTES,
  type RootDocument,
} from '../catalog/index.js';
import type { PkgContext } from './context.js';
import { downloadFile, fetchBytes, joinUrl, originsOf, tryMirrors } from './download.js';
import { readGptDisk } from './gpt-table.js';
import { loadTrustedRoot, readRepos, type RepoConfig } from './repos.js';
import {
  DEFAULT_TRIES,
  entryFileName,
  markSlotGood,
  otherSlot,
  planSystemUpdate,
  readSystemStatus,
  rollbackSlot,
  stageSystemUpdate,
  type SlotName,
  type SystemArtifactSource,
  type SystemLayout,
  type SystemStatus,
} from './system-slots.js';
import { planThenApply, type PlanGate } from './writer.js';

/**
 * `pkg system ...`: the A/B system slots of a machine booted by systemd-boot
 * from a system disk (see system-slots.ts). The ESP is where the guest mounts
 * it unless `esp` says otherwise; the running slot is the one the loader
 * entry put on the kernel command line (`swpkg.slot=`), unless `slot` says.
 */

export const DEFAULT_ESP = '/boot/efi';

export interface SystemTarget {
  esp?: string;
  slot?: SlotName;
  /** Where the kernel command line is read from (tests); default /proc/cmdline. */
  cmdline?: string;
}

export function parseSlotName(v: string): SlotName {
  if (v === 'a' || v === 'b') return v;
  throw new SwpkgError('E_USAGE', `a slot is a or b, not ${JSON.stringify(v)}`, { details: { slot: v } });
}

async function target(o: SystemTarget): Promise<{ esp: string; active: SlotName }> {
  const esp = o.esp ?? DEFAULT_ESP;
  if (o.slot) return { esp, active: o.slot };
  const file = o.cmdline ?? '/proc/cmdline';
  let line = '';
  try {
    line = await readFile(file, 'utf8');
  } catch {
    // No command line to read (not Linux, or a sandbox): the same answer as a command line without a slot.
  }
  const m = /(?:^|\s)swpkg\.slot=([ab])(?:\s|$)/.exec(line);
  if (!m?.[1]) {
    throw new SwpkgError('E_USAGE', 'this system was not booted from an A/B system disk (no swpkg.slot= on the kernel command line)', {
      hint: 'boot through UEFI from a system disk, or name the running slot with --slot',
      details: { cmdline: file },
    });
  }
  return { esp, active: m[1] as SlotName };
}

export type SystemStatusReport = SystemStatus & { esp: string };

/** `pkg system status`: both slots, which is running, which boots next, tries left, the last failure. Reads only. */
export async function systemStatus(_ctx: PkgContext, o: SystemTarget = {}): Promise<SystemStatusReport> {
  const t = await target(o);
  return { ...(await readSystemStatus(t)), esp: t.esp };
}

/** `pkg system mark-good`: the running slot passed its checks; the loader stops counting its tries. */
export async function systemMarkGood(_ctx: PkgContext, o: SystemTarget = {}): Promise<{ slot: SlotName; changed: boolean; entry: string }> {
  return markSlotGood(await target(o));
}

export interface SystemRollbackResult {
  from: SlotName;
  to: SlotName;
  changed: boolean;
  dryRun?: boolean;
  declined?: boolean;
}

/**
 * `pkg system rollback`: the next boot starts the other slot (it must hold a
 * system that is not marked bad). Shown and confirmed like every change; the
 * change itself is one rename of the running slot's entry.
 */
export async function systemRollback(
  ctx: PkgContext,
  o: SystemTarget & PlanGate<SystemRollbackResult> = {},
): Promise<SystemRollbackResult> {
  const t = await target(o);
  const outcome = await planThenApply(ctx, o, {
    plan: async (): Promise<SystemRollbackResult> => {
      const s = await readSystemStatus(t);
      const to = otherSlot(t.active);
      const other = s.slots.find((x) => x.slot === to);
      if (!other || other.state === 'empty' || other.state === 'bad') {
        throw new SwpkgError(
          'E_NOT_FOUND',
          `slot ${to.toUpperCase()} holds no bootable system to roll back to (it is ${other?.state ?? 'empty'})`,
          {
            details: { slot: to, state: other?.state ?? 'empty' },
          },
        );
      }
      return { from: t.active, to, changed: s.nextBoot !== to };
    },
    isEmpty: (p) => !p.changed,
    identity: (p) => `${p.from}->${p.to}`,
    apply: () => rollbackSlot(t),
  });
  if (outcome.kind === 'dry-run') return { ...outcome.plan, dryRun: true };
  if (outcome.kind === 'declined') return { ...outcome.plan, declined: true };
  return outcome.plan;
}

/** The whole system disk in the guest: its GPT names the slots. */
export const DEFAULT_SYSTEM_DISK = '/dev/vda';

export interface SystemUpdateOptions extends SystemTarget {
  /** Which configured repository publishes the system (default: the only one). */
  repo?: string;
  /** The disk whose GPT holds swpkg-base-a and swpkg-base-b (default /dev/vda; an image file on the host). */
  disk?: string;
  tries?: number;
}

export interface SystemUpdatePlan {
  repo: string;
  from: SlotName;
  to: SlotName;
  version: number;
  /** The entry that will make the new slot the next boot's first choice, with its tries. */
  entry: string;
  bytes: number;
  changed: boolean;
  dryRun?: boolean;
  declined?: boolean;
}

interface SystemState {
  version: number;
  payloadSha256: string;
  slot: SlotName;
  stagedAt: string;
}

const stateFile = (ctx: PkgContext): string => join(ctx.paths.db, 'system.json');

async function readState(ctx: PkgContext): Promise<SystemState | undefined> {
  try {
    return JSON.parse(await readFile(stateFile(ctx), 'utf8')) as SystemState;
  } catch {
    // Never staged (or an unreadable record): every signed release newer than nothing is acceptable, as on first use.
    return undefined;
  }
}

async function writeState(ctx: PkgContext, s: SystemState): Promise<void> {
  await mkdir(ctx.paths.db, { recursive: true });
  const tmp = `${stateFile(ctx)}.tmp`;
  try {
    const fh = await open(tmp, 'w', 0o644);
    try {
      await fh.writeFile(JSON.stringify(s, null, 2) + '\n');
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, stateFile(ctx));
  } catch (e) {
    throw fromFsError(e, `writing ${stateFile(ctx)}`);
  }
}

async function pickRepo(ctx: PkgContext, name: string | undefined): Promise<RepoConfig> {
  const repos = await readRepos(ctx);
  const r = name === undefined ? (repos.length === 1 ? repos[0] : undefined) : repos.find((x) => x.name === name);
  if (!r) {
    throw new SwpkgError(
      name === undefined && repos.length > 1 ? 'E_USAGE' : 'E_NOT_FOUND',
      name === undefined
        ? repos.length === 0
          ? 'no repository is configured'
          : 'several repositories are configured; name the one that publishes the system with --repo'
        : `no repository named ${name}`,
      { hint: 'pkg repo list', details: { repo: name ?? null } },
    );
  }
  return r;
}

/** The slots' byte ranges on the system disk, by GPT partition name. */
async function slotsOnDisk(disk: string): Promise<SystemLayout['slots']> {
  const parts = await readGptDisk(disk);
  const find = (slot: SlotName): { path: string; offset: number; size: number } => {
    const p = parts.find((x) => x.name === `swpkg-base-${slot}`);
    if (!p) {
      throw new SwpkgError('E_NOT_FOUND', `${disk} has no partition named swpkg-base-${slot}`, {
        hint: 'this is not an A/B system disk (see images/uefi-disk.ts)',
        details: { disk },
      });
    }
    return { path: disk, offset: p.offset, size: p.size };
  };
  return { a: find('a'), b: find('b') };
}

/** The kernel command line of the running slot's entry, without its slot: the new slot boots the same way. */
async function runningOptions(esp: string, active: SlotName): Promise<string> {
  const s = await readSystemStatus({ esp, active });
  const entry = s.slots.find((x) => x.slot === active)?.entry;
  if (!entry) throw new SwpkgError('E_NOT_FOUND', `slot ${active.toUpperCase()} has no loader entry`, { details: { slot: active } });
  const text = await readFile(join(esp, 'loader', 'entries', entry), 'utf8');
  const line = /^options +(.*)$/m.exec(text)?.[1] ?? '';
  return line
    .split(/\s+/)
    .filter((w) => w !== '' && !w.startsWith('swpkg.slot='))
    .join(' ');
}

function httpSource(ctx: PkgContext, bases: string[]): SystemArtifactSource {
  return {
    async fetch(a, dest) {
      await downloadFile(
        bases.map((b) => joinUrl(b, a.path)),
        {
          transport: await ctx.transport(),
          dest,
          size: a.size,
          sha256: a.sha256,
          limits: ctx.limits,
          retries: ctx.retries,
          reporter: ctx.reporter,
          label: a.path,
          origins: originsOf(bases),
        },
      );
    },
  };
}

/**
 * `pkg system update`: fetches the repository's system release for this
 * machine's arch, verifies it with the trust chain `pkg update` accepted
 * (root, expiry, version never lower than the last staged, arch), shows the
 * plan, then stages it into the inactive slot (stageSystemUpdate: every
 * artifact verified before the slot is touched; the active slot never
 * written). The new slot boots next with `tries` tries; `pkg system
 * mark-good` after a healthy boot keeps it, used-up tries fall back.
 */
export async function systemUpdate(ctx: PkgContext, o: SystemUpdateOptions & PlanGate<SystemUpdatePlan> = {}): Promise<SystemUpdatePlan> {
  const t = await target(o);
  const repo = await pickRepo(ctx, o.repo);
  const bases = [repo.url, ...repo.mirrors];
  const root: RootDocument = await loadTrustedRoot(ctx, repo.name);
  assertRootCurrent(root, ctx.now());
  const arch = ctx.client.arch;
  const transport = await ctx.transport();
  const releaseBytes = await tryMirrors(
    bases,
    (base) =>
      fetchBytes(joinUrl(base, systemReleasePath(arch)), {
        transport,
        maxBytes: MAX_SYSTEM_RELEASE_BYTES,
        limits: ctx.limits,
        origins: originsOf(bases),
      }),
    ctx.reporter,
  );
  const layout: SystemLayout = { esp: t.esp, active: t.active, slots: await slotsOnDisk(o.disk ?? DEFAULT_SYSTEM_DISK) };
  const tries = o.tries ?? DEFAULT_TRIES;
  const common = { layout, releaseBytes, root, now: ctx.now(), arch, repo: repo.name, tries };
  const outcome = await planThenApply(ctx, o, {
    plan: async (): Promise<SystemUpdatePlan> => {
      const state = await readState(ctx);
      const p = await planSystemUpdate({
        ...common,
        ...(state ? { lastAccepted: { version: state.version, payloadSha256: state.payloadSha256 } } : {}),
      });
      const a = p.doc.signed.artifacts;
      return {
        repo: repo.name,
        from: t.active,
        to: p.slot,
        version: p.doc.signed.version,
        entry: entryFileName({ slot: p.slot, triesLeft: tries }),
        bytes: a.kernel.size + a.initramfs.size + a.base.size,
        changed: true,
      };
    },
    isEmpty: (p) => !p.changed,
    identity: (p) => `${p.to}@${p.version}`,
    apply: async () => {
      const state = await readState(ctx);
      const r = await stageSystemUpdate({
        ...common,
        ...(state ? { lastAccepted: { version: state.version, payloadSha256: state.payloadSha256 } } : {}),
        source: httpSource(ctx, bases),
        stagingDir: join(ctx.paths.cache, 'system-staging'),
        options: await runningOptions(t.esp, t.active),
        reporter: ctx.reporter,
      });
      // Recorded after the entry exists: a power cut before this leaves the version unrecorded, and a rerun accepts it again anyway.
      await writeState(ctx, { version: r.version, payloadSha256: r.payloadSha256, slot: r.slot, stagedAt: ctx.now().toISOString() });
      return r;
    },
  });
  if (outcome.kind === 'dry-run') return { ...outcome.plan, dryRun: true };
  if (outcome.kind === 'declined') return { ...outcome.plan, declined: true };
  return outcome.plan;
}
