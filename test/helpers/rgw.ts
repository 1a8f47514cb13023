import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { AwsClient } from 'aws4fetch';

const REPO_ROOT = resolve(import.meta.dirname, '../..');

export interface Rgw {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  /** The environment a `swpkg repo publish --to` child needs. */
  env: Record<string, string>;
  /** A signed S3 client for setting up and tampering in tests. */
  aws: AwsClient;
}

function run(args: string[], timeoutMs: number): Promise<string> {
  return new Promise((res, rej) => {
    execFile('bash', [resolve(REPO_ROOT, 'scripts/rgw.sh'), ...args], { timeout: timeoutMs }, (err, stdout, stderr) => {
      // No silent skip: a gateway that cannot start fails the test with the script's reason.
      if (err) rej(new Error(`scripts/rgw.sh ${args.join(' ')} failed: ${err.message}\n${stderr}`));
      else res(stdout);
    });
  });
}

/**
 * Starts (or reuses) the single-node Ceph RADOS Gateway of scripts/rgw.sh.
 * It stays up for the rest of the run (test files share it; scripts/test.sh
 * stops it at the end).
 */
export async function startRgw(): Promise<Rgw> {
  await run(['start'], 240_000);
  const env = Object.fromEntries(
    (await run(['env'], 10_000))
      .trim()
      .split('\n')
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  ) as Record<string, string>;
  const endpoint = env['SWPKG_S3_ENDPOINT']!;
  const accessKeyId = env['AWS_ACCESS_KEY_ID']!;
  const secretAccessKey = env['AWS_SECRET_ACCESS_KEY']!;
  const region = env['AWS_REGION']!;
  return {
    endpoint,
    accessKeyId,
    secretAccessKey,
    region,
    env: { AWS_ACCESS_KEY_ID: accessKeyId, AWS_SECRET_ACCESS_KEY: secretAccessKey, AWS_REGION: region },
    aws: new AwsClient({ accessKeyId, secretAccessKey, service: 's3', region, retries: 0 }),
  };
}

/**
 * A fresh bucket clients may read anonymously (GetObject and ListBucket for
 * everyone, as a publisher sets one up for plain HTTP or a CDN). Returns its
 * name and the base URL a client uses for `prefix`.
 */
export async function freshBucket(rgw: Rgw, prefix = 'repo'): Promise<{ bucket: string; s3: string; url: string }> {
  const bucket = `swpkg-${randomBytes(6).toString('hex')}`;
  const put = await rgw.aws.fetch(`${rgw.endpoint}/${bucket}`, { method: 'PUT' });
  if (!put.ok) throw new Error(`creating bucket ${bucket}: HTTP ${put.status} ${await put.text()}`);
  const policy = {
    Version: '2012-10-17',
    // ListBucket too: without it S3 answers 403 for a missing key, and clients need 404 ("no newer root").
    Statement: [
      { Effect: 'Allow', Principal: '*', Action: ['s3:GetObject'], Resource: [`arn:aws:s3:::${bucket}/*`] },
      { Effect: 'Allow', Principal: '*', Action: ['s3:ListBucket'], Resource: [`arn:aws:s3:::${bucket}`] },
    ],
  };
  const pol = await rgw.aws.fetch(`${rgw.endpoint}/${bucket}?policy`, { method: 'PUT', body: JSON.stringify(policy) });
  if (!pol.ok) throw new Error(`bucket policy for ${bucket}: HTTP ${pol.status} ${await pol.text()}`);
  return { bucket, s3: `s3://${bucket}/${prefix}`, url: `${rgw.endpoint}/${bucket}/${prefix}/` };
}

/** Every key in a bucket with its ETag: rejection tests compare it before and after. */
export async function bucketState(rgw: Rgw, bucket: string): Promise<string[]> {
  const res = await rgw.aws.fetch(`${rgw.endpoint}/${bucket}?list-type=2&max-keys=1000`);
  const xml = await res.text();
  if (!res.ok) throw new Error(`listing ${bucket}: HTTP ${res.status} ${xml}`);
  return [...xml.matchAll(/<Contents>[\s\S]*?<Key>([^<]*)<\/Key>[\s\S]*?<ETag>([^<]*)<\/ETag>/g)].map((m) => `${m[1]} ${m[2]}`).sort();
}

/** Writes one object directly (a tamperer, a stale mirror sync, a stranger's file). */
export async function putObject(rgw: Rgw, bucket: string, key: string, body: Uint8Array | string): Promise<void> {
  const res = await rgw.aws.fetch(`${rgw.endpoint}/${bucket}/${key}`, { method: 'PUT', body });
  if (!res.ok) throw new Error(`PUT ${key}: HTTP ${res.status} ${await res.text()}`);
}
