import { describe, expect, it } from 'vitest';
import { refuseForeignOnly, type ForeignPackage } from '../../../userland/foreign-packages.js';

const client = { arch: 'x86_64', abi: 'linux-musl-static', format: 1 };
const foreign = (name: string, arch: string, abi = 'linux-musl-static'): ForeignPackage => ({
  name,
  version: '1.0.0',
  arch,
  abi,
  repo: 'main',
});
const refusal = (f: () => void): unknown => {
  try {
    f();
  } catch (e) {
    return e;
  }
  return undefined;
};

describe('a request only another machine could satisfy', () => {
  it('names the arches that have it and this machine', () => {
    const e = refusal(() => refuseForeignOnly([{ name: 'hello' }], [], [foreign('hello', 'aarch64')], client));
    expect(e).toMatchObject({ code: 'E_INCOMPATIBLE', details: { package: 'hello', arches: ['aarch64'], clientArch: 'x86_64' } });
  });

  it('names the ABI when the arch fits but the ABI does not', () => {
    const e = refusal(() => refuseForeignOnly([{ name: 'hello' }], [], [foreign('hello', 'x86_64', 'linux-gnu')], client));
    expect(e).toMatchObject({ code: 'E_INCOMPATIBLE', details: { abis: ['linux-gnu'], clientAbi: 'linux-musl-static' } });
  });

  it('lets through a name some usable package has or provides, and a name nobody offers', () => {
    const usable = [
      { name: 'hello', provides: [] },
      { name: 'mawk', provides: ['awk'] },
    ];
    const other = [foreign('hello', 'aarch64'), foreign('awk', 'aarch64')];
    expect(
      refusal(() => refuseForeignOnly([{ name: 'hello' }, { name: 'awk' }, { name: 'nosuch' }], usable, other, client)),
    ).toBeUndefined();
  });
});
