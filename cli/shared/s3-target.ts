import { Flags } from '@oclif/core';
import { SwpkgError } from '../../catalog/index.js';
import { S3Target, parseS3Url } from '../../publishing/index.js';

/** The flags every command that writes a repository into object storage takes (publish, release create). */
export const s3Flags = {
  endpoint: Flags.string({ summary: 'S3 API endpoint for --to, e.g. http://127.0.0.1:7480 (path-style requests).', dependsOn: ['to'] }),
  region: Flags.string({ summary: 'SigV4 region for --to (default: AWS_REGION, else us-east-1).', dependsOn: ['to'] }),
};

/**
 * `--to s3://BUCKET/PREFIX --endpoint URL [--region R]` as a target, credentials from
 * AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY; every missing or malformed part is E_USAGE before any request.
 */
export function s3TargetFromFlags(flags: { to: string; endpoint?: string | undefined; region?: string | undefined }): S3Target {
  if (flags.endpoint === undefined) throw new SwpkgError('E_USAGE', '--to needs --endpoint URL (the S3 API of the store)');
  const accessKeyId = process.env['AWS_ACCESS_KEY_ID'];
  const secretAccessKey = process.env['AWS_SECRET_ACCESS_KEY'];
  if (!accessKeyId || !secretAccessKey)
    throw new SwpkgError('E_USAGE', '--to needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment');
  if (!/^https?:\/\/[^/]+\/?$/.test(flags.endpoint))
    throw new SwpkgError('E_USAGE', `--endpoint ${flags.endpoint} is not http(s)://HOST[:PORT]`, {
      details: { endpoint: flags.endpoint },
    });
  return new S3Target({
    ...parseS3Url(flags.to),
    endpoint: flags.endpoint,
    region: flags.region ?? process.env['AWS_REGION'] ?? 'us-east-1',
    accessKeyId,
    secretAccessKey,
  });
}
