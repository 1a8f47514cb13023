import { describe, expect, it } from 'vitest';
import { parseHostedRepo } from '../../../catalog/index.js';
import { parseS3Url } from '../../../publishing/index.js';

const hint = {
  format: 1,
  name: 'main',
  catalog: 'catalogs/1-' + 'a'.repeat(64) + '.json',
  rootFingerprint: 'f',
  rootVersion: 1,
  mirrors: [],
};
const bytes = (v: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(v));

describe('hosted-repo.json retainedCatalogs', () => {
  it('is optional and kept when present', () => {
    expect(parseHostedRepo(bytes(hint)).retainedCatalogs).toBeUndefined();
    expect(parseHostedRepo(bytes({ ...hint, retainedCatalogs: ['catalogs/0-x.json'] })).retainedCatalogs).toEqual(['catalogs/0-x.json']);
  });

  it('anything but an array of strings is E_MALFORMED', () => {
    for (const bad of ['catalogs/0-x.json', [1], null, {}]) {
      expect(() => parseHostedRepo(bytes({ ...hint, retainedCatalogs: bad }))).toThrow(expect.objectContaining({ code: 'E_MALFORMED' }));
    }
  });
});

describe('parseS3Url', () => {
  it('splits bucket and prefix', () => {
    expect(parseS3Url('s3://pkgs')).toEqual({ bucket: 'pkgs', prefix: '' });
    expect(parseS3Url('s3://pkgs/main/')).toEqual({ bucket: 'pkgs', prefix: 'main' });
    expect(parseS3Url('s3://my.bucket-1/a/b')).toEqual({ bucket: 'my.bucket-1', prefix: 'a/b' });
  });

  it('refuses what is not a plain s3://BUCKET/PREFIX (E_USAGE)', () => {
    for (const bad of ['http://pkgs/main', 's3://', 's3://UPPER/x', 's3://pkgs/../x', 's3://pkgs/a b', 's3://pkgs/./x', 's3://ab']) {
      expect(() => parseS3Url(bad), bad).toThrow(expect.objectContaining({ code: 'E_USAGE' }));
    }
  });
});
