import { readFile } from 'node:fs/promises';
import { SwpkgError } from '../catalog/index.js';
import type { PkgContext } from './context.js';
import { markSlotGood, otherSlot, readSystemStatus, rollbackSlot, type SlotName, type SystemStatus } from './system-slots.js';
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
