import { describe, expect, it } from 'vitest';
import { HASHED_PACKAGE, packageFileName } from '../../../publishing/index.js';

const hex = '0123456789abcdef'.repeat(4);

describe('hash-named package files', () => {
  it('keep NAME-VERSION-ARCH readable and end in the SHA-256 of the bytes', () => {
    const name = packageFileName({ name: 'zlib', version: '1.3.1-rc.1+build.5', arch: 'x86_64' }, hex);
    expect(name).toBe(`zlib-1.3.1-rc.1+build.5-x86_64.${hex}.swpkg`);
    expect(HASHED_PACKAGE.exec(`packages/${name}`)?.[1]).toBe(hex);
  });

  it('HASHED_PACKAGE matches only a full lower-case SHA-256 right before .swpkg, under packages/', () => {
    for (const bad of [
      'packages/zlib-1.3.1-x86_64.swpkg',
      `packages/zlib-1.3.1-x86_64.${hex.slice(1)}.swpkg`,
      `packages/zlib-1.3.1-x86_64.${hex.toUpperCase()}.swpkg`,
      `packages/zlib-1.3.1-x86_64.${hex}.swpkg.sha256`,
      `other/zlib-1.3.1-x86_64.${hex}.swpkg`,
      `packages/sub/zlib-1.3.1-x86_64.${hex}.swpkg`,
    ]) {
      expect(HASHED_PACKAGE.test(bad), bad).toBe(false);
    }
  });
});
