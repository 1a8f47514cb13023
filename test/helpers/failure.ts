/**
 * The one way tests take hold of a refusal: the coded error itself, so a test asserts its code and
 * details (never wording), and a success or an uncoded error (a bug) fails the test.
 */
import { expect } from 'vitest';
import { SwpkgError } from '../../catalog/index.js';

/** The coded error `p` rejects with. */
export async function failure(p: Promise<unknown>): Promise<SwpkgError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(SwpkgError);
    return e as SwpkgError;
  }
  throw new Error('expected a coded failure, but it succeeded');
}

/** The coded error `f` throws. */
export function thrown(f: () => unknown): SwpkgError {
  const e = maybeThrown(f);
  if (e === undefined) throw new Error('expected a coded error, but it succeeded');
  return e;
}

/** The coded error `f` throws, or undefined when it succeeds (table rows where some cases pass). */
export function maybeThrown(f: () => unknown): SwpkgError | undefined {
  try {
    f();
    return undefined;
  } catch (e) {
    expect(e).toBeInstanceOf(SwpkgError);
    return e as SwpkgError;
  }
}
