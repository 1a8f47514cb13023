import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { SwpkgError, verifyPackageFile, type ErrorCode, type VerifiedPackage } from '../catalog/index.js';

/**
 * Runs `fn` over `items` with at most `limit` calls in flight and yields the results in the
 * items' order, whatever order they finish in. A rejection is thrown when its item's turn comes,
 * after every earlier result was yielded: the caller sees exactly what a loop in turn would have
 * seen (the first bad item in order, not the first to fail). Stopping early (a throw in the
 * consumer, or this throwing) launches nothing more; calls already in flight finish unobserved.
 * Results wait for their turn at most `limit` at a time, so memory does not grow with `items`.
 */
export async function* mapInOrder<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): AsyncGenerator<R> {
  const pending: Promise<R>[] = [];
  let launched = 0;
  const launch = (): void => {
    while (launched < items.length && pending.length < limit) {
      const p = fn(items[launched++]!);
      // Observed when its turn comes; a result nobody reaches (an earlier item failed) must not be an unhandled rejection.
      p.catch(() => {});
      pending.push(p);
    }
  };
  launch();
  while (pending.length > 0) {
    const r = await pending.shift()!;
    launch();
    yield r;
  }
}

interface WorkerAnswer {
  id: number;
  verified?: VerifiedPackage;
  error?: { code?: ErrorCode; message: string; hint?: string; details?: Record<string, unknown> };
}

/**
 * Verifies packages in worker threads (publishing/verify-worker.ts, built to verify-worker.js beside
 * this file): each has its own event loop and heap, so hashing, the tar walk and their garbage
 * collection run on every core instead of one. The checks are `verifyPackageFile`'s own, run in the
 * worker; a refusal comes back as the same SwpkgError (code, message, hint, details; the cause stays
 * behind, it is not cloneable). A package goes to the worker with the fewest in flight.
 */
export class WorkerVerifier {
  private readonly workers: { worker: Worker; inFlight: number }[] = [];
  private readonly waiting = new Map<number, { resolve: (v: VerifiedPackage) => void; reject: (e: unknown) => void }>();
  private nextId = 0;
  private broken: Error | undefined;

  constructor(count: number) {
    const url = new URL('./verify-worker.js', import.meta.url);
    for (let n = 0; n < count; n++) {
      const worker = new Worker(url);
      const slot = { worker, inFlight: 0 };
      worker.on('message', (a: WorkerAnswer) => {
        slot.inFlight--;
        const w = this.waiting.get(a.id);
        if (w === undefined) return;
        this.waiting.delete(a.id);
        if (a.verified !== undefined) w.resolve(a.verified);
        else if (a.error?.code !== undefined) {
          const init = { details: a.error.details ?? {}, ...(a.error.hint === undefined ? {} : { hint: a.error.hint }) };
          w.reject(new SwpkgError(a.error.code, a.error.message, init));
        } else w.reject(new Error(a.error?.message ?? 'verify worker answered nothing'));
      });
      // A worker that dies takes its packages with it: everything still waiting fails, nothing hangs.
      const die = (e: Error): void => {
        this.broken ??= e;
        for (const w of this.waiting.values()) w.reject(e);
        this.waiting.clear();
      };
      worker.on('error', die);
      worker.on('exit', (code) => {
        if (code !== 0 || this.waiting.size > 0) die(new Error(`a package verify worker exited with code ${code}`));
      });
      this.workers.push(slot);
    }
  }

  verify(path: string): Promise<VerifiedPackage> {
    if (this.broken !== undefined) return Promise.reject(this.broken);
    const slot = this.workers.reduce((a, b) => (b.inFlight < a.inFlight ? b : a));
    const id = this.nextId++;
    slot.inFlight++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      slot.worker.postMessage({ id, path });
    });
  }

  async close(): Promise<void> {
    this.broken ??= new Error('the verify workers were closed');
    await Promise.all(this.workers.map((w) => w.worker.terminate()));
  }
}

/** Packages verified at once when the caller does not say: a worker per 32 packages, at most one per core (1: none, on this thread). */
export function defaultVerifyJobs(packages: number): number {
  // Starting a worker (a thread, the core's modules) costs about as much as verifying 20 small packages.
  return Math.max(1, Math.min(availableParallelism(), Math.floor(packages / 32)));
}

/**
 * Verifies every path, yielding results in the paths' order (mapInOrder's contract). `jobs` 1 verifies
 * on this thread, two packages in flight so that one inflates in libuv's pool while the other is
 * hashed; more starts that many worker threads, closed when the iteration ends however it ends.
 */
export async function* verifyPackagesInOrder(paths: readonly string[], jobs: number): AsyncGenerator<VerifiedPackage> {
  if (jobs <= 1) {
    yield* mapInOrder(paths, 2, (p) => verifyPackageFile(p));
    return;
  }
  const pool = new WorkerVerifier(jobs);
  try {
    // Two per worker in flight: one inflates in libuv's pool while the worker hashes the other.
    yield* mapInOrder(paths, jobs * 2, (p) => pool.verify(p));
  } finally {
    await pool.close();
  }
}
