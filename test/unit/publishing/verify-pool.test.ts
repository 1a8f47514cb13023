import { describe, expect, it } from 'vitest';
import { mapInOrder } from '../../../publishing/verify-pool.js';

/** A call per item that settles only when the test says so, recording how many were in flight at once. */
function controlled<T>() {
  const calls = new Map<T, { resolve: (v: string) => void; reject: (e: Error) => void }>();
  let inFlight = 0;
  let peak = 0;
  const fn = (item: T): Promise<string> =>
    new Promise((resolve, reject) => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      calls.set(item, {
        resolve: (v) => {
          inFlight--;
          resolve(v);
        },
        reject: (e) => {
          inFlight--;
          reject(e);
        },
      });
    });
  return { fn, calls, peak: () => peak };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('mapInOrder', () => {
  it('yields in the items’ order whatever order the calls finish in, never more than the limit in flight', async () => {
    const c = controlled<number>();
    const items = [0, 1, 2, 3, 4, 5];
    const got: string[] = [];
    const done = (async () => {
      for await (const r of mapInOrder(items, 3, c.fn)) got.push(r);
    })();
    await tick();
    expect([...c.calls.keys()]).toEqual([0, 1, 2]);
    c.calls.get(2)!.resolve('r2');
    c.calls.get(1)!.resolve('r1');
    await tick();
    expect(got).toEqual([]); // item 0 has not finished: nothing after it may come out first
    c.calls.get(0)!.resolve('r0');
    await tick();
    expect(got).toEqual(['r0', 'r1', 'r2']);
    expect([...c.calls.keys()]).toEqual([0, 1, 2, 3, 4, 5]); // one launched as each result was taken
    for (const i of [5, 4, 3]) c.calls.get(i)!.resolve(`r${i}`);
    await done;
    expect(got).toEqual(['r0', 'r1', 'r2', 'r3', 'r4', 'r5']);
    expect(c.peak()).toBe(3);
  });

  it('throws the first failure in item order, after everything before it, even when a later item failed first', async () => {
    const c = controlled<number>();
    const got: string[] = [];
    const done = (async () => {
      for await (const r of mapInOrder([0, 1, 2, 3], 4, c.fn)) got.push(r);
    })();
    await tick();
    c.calls.get(3)!.reject(new Error('item 3'));
    c.calls.get(2)!.reject(new Error('item 2'));
    await tick();
    c.calls.get(0)!.resolve('r0');
    c.calls.get(1)!.resolve('r1');
    await expect(done).rejects.toThrow('item 2');
    expect(got).toEqual(['r0', 'r1']);
  });

  it('launches nothing more once the consumer stops', async () => {
    const c = controlled<number>();
    const items = Array.from({ length: 10 }, (_, i) => i);
    const done = (async () => {
      for await (const r of mapInOrder(items, 2, c.fn)) if (r === 'r1') throw new Error('consumer refuses r1');
    })();
    await tick();
    c.calls.get(0)!.resolve('r0');
    await tick();
    c.calls.get(1)!.resolve('r1');
    await expect(done).rejects.toThrow('consumer refuses r1');
    await tick();
    // 0 and 1, then 2 launched when 0 was taken and 3 when 1 was: nothing after the stop.
    expect([...c.calls.keys()]).toEqual([0, 1, 2, 3]);
  });
});
