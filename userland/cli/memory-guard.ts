import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

type Gc = (options?: { type: 'minor' | 'major' }) => void;

/** `gc` from `--expose-gc`, or exposed now; null when neither works. Costs ~8 ms (a new context). */
function exposeGc(): Gc | null {
  const own = (globalThis as { gc?: Gc }).gc;
  if (own !== undefined) return own;
  try {
    setFlagsFromString('--expose-gc');
    return runInNewContext('gc') as Gc;
  } catch {
    return null;
  }
}

/**
 * Keeps a large download or extraction inside the memory budget of a small
 * guest (well under 150 MiB peak RSS for a 1 GiB package). Every byte read
 * from a socket, a file or gunzip arrives in a fresh buffer; V8 frees them
 * only after tens of MiB of such garbage pile up, because the JS heap itself
 * stays tiny. This guard looks every `everyMs` and runs a collection once
 * buffers grew by more than `limit` bytes since the last one. Peak RSS of a
 * 1 GiB install from loopback (two runs each, same machine and minute): no
 * guard 162-169 MiB, 16 MiB/50 ms 141-143 MiB, 16 MiB/10 ms 115-117 MiB at
 * the same wall time; at 50 ms a fast machine piles up too much between
 * looks. Reading the counters costs about 0.05 ms a look.
 *
 * `gc` comes from `node --expose-gc`, or is exposed at run time
 * (v8.setFlagsFromString + a new context) — the documented way to reach it
 * without a flag; if that ever fails the guard simply does nothing.
 */
export function startMemoryGuard(limit = 16 * 1024 * 1024, everyMs = 10): () => void {
  // Reached only once buffers pile up, so commands that move little data (list, search, info) never pay for it.
  let collect: Gc | null | undefined;
  // Collect when buffers grew by `limit` since the last collection, not whenever more than `limit` is held:
  // a transaction with many downloads and extractions in flight legitimately holds more than `limit`, and a
  // fixed threshold then forced a full collection on every tick (measured: +25% time installing 300 small
  // packages, no lower peak).
  let floor = process.memoryUsage().arrayBuffers;
  const timer = setInterval(() => {
    const held = process.memoryUsage().arrayBuffers;
    floor = Math.min(floor, held);
    if (held - floor > limit) {
      collect ??= exposeGc();
      if (collect === null) return clearInterval(timer);
      // A minor collection (scavenge) is enough: chunk buffers die young. Against a full one, measured on
      // 300 local packages: 6.7-7.0 s user CPU instead of 8.7, with the same 1 GiB peak RSS (117-124 MiB).
      collect({ type: 'minor' });
      floor = process.memoryUsage().arrayBuffers;
    }
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
