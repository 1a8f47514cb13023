import { createHash } from 'node:crypto';
import { AwsClient } from 'aws4fetch';
import { SwpkgError } from '../catalog/index.js';
import {
  IMMUTABLE_CACHE,
  POINTER_CACHE,
  bodyBytes,
  fileStream,
  immutableClash,
  raceLost,
  type Body,
  type PublishTarget,
} from './storage.js';

export interface S3Location {
  bucket: string;
  /** Key prefix without leading or trailing slash ('' for the bucket's top). */
  prefix: string;
}

/** Parses `s3://BUCKET/PREFIX`. */
export function parseS3Url(url: string): S3Location {
  const m = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(\/.*)?$/.exec(url);
  if (!m) {
    throw new SwpkgError('E_USAGE', `${url} is not s3://BUCKET/PREFIX`, {
      hint: 'a bucket name is 3-63 lower-case letters, digits, dots and hyphens',
      details: { url },
    });
  }
  const prefix = (m[2] ?? '').replace(/^\/+|\/+$/g, '');
  if (prefix.split('/').some((s) => s === '..' || s === '.') || /[^A-Za-z0-9._/-]/.test(prefix))
    throw new SwpkgError('E_USAGE', `the prefix of ${url} must be plain path segments`, { details: { url } });
  return { bucket: m[1]!, prefix };
}

export interface S3TargetOptions extends S3Location {
  /** http(s)://host:port of the S3 API (path-style requests). */
  endpoint: string;
  region?: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** Per request, until the response headers arrive (not the body). */
  timeoutMs?: number;
}

const SHA_HEADER = 'x-amz-meta-sha256';

/**
 * A bucket (or a prefix in one) on any S3-compatible store, spoken with
 * SigV4 over fetch. Hashed names go up create-only (If-None-Match: *), the
 * pointer with If-Match on the ETag read at the start, every object with
 * its Cache-Control. Package bodies stream with their length and
 * UNSIGNED-PAYLOAD: the catalog's SHA-256 protects their bytes, the
 * signature protects the request.
 */
/** Tries of one write when the store answers 5xx (the first included). */
const WRITE_ATTEMPTS = 4;

export class S3Target implements PublishTarget {
  readonly where: string;
  private readonly aws: AwsClient;
  private readonly base: string;
  private readonly timeoutMs: number;

  constructor(private readonly o: S3TargetOptions) {
    this.where = `s3://${o.bucket}${o.prefix ? `/${o.prefix}` : ''}`;
    // No retries inside the client: a stream cannot be sent twice, and a failed publish is rerun whole.
    this.aws = new AwsClient({
      accessKeyId: o.accessKeyId,
      secretAccessKey: o.secretAccessKey,
      service: 's3',
      region: o.region ?? 'us-east-1',
      retries: 0,
    });
    this.base = `${o.endpoint.replace(/\/+$/, '')}/${o.bucket}`;
    this.timeoutMs = o.timeoutMs ?? 30_000;
  }

  private key(path: string): string {
    return this.o.prefix ? `${this.o.prefix}/${path}` : path;
  }

  private url(path: string): string {
    return `${this.base}/${this.key(path)
      .split('/')
      .map((s) => encodeURIComponent(s))
      .join('/')}`;
  }

  /**
   * A write, retried on the answers S3 stores give for a passing overload or an internal hiccup
   * (500, 502, 503 SlowDown, 504), a bounded number of times with backoff, as the AWS SDKs do.
   * `makeInit` builds the request again each time: a streamed body cannot be sent twice.
   */
  private async sendWrite(
    method: string,
    url: string,
    makeInit: () => RequestInit & { headers?: Record<string, string> },
  ): Promise<Response> {
    for (let attempt = 1; ; attempt++) {
      const res = await this.send(method, url, makeInit());
      if (![500, 502, 503, 504].includes(res.status) || attempt >= WRITE_ATTEMPTS) return res;
      await res.body?.cancel();
      await new Promise((r) => setTimeout(r, 200 * 2 ** (attempt - 1)));
    }
  }

  private async send(method: string, url: string, init: RequestInit & { headers?: Record<string, string> } = {}): Promise<Response> {
    let res: Response;
    try {
      res = await this.aws.fetch(url, { method, ...init, signal: init.signal ?? AbortSignal.timeout(this.timeoutMs) });
    } catch (e) {
      throw new SwpkgError(
        'E_NETWORK',
        `${method} ${url}: ${(e as Error).cause instanceof Error ? ((e as Error).cause as Error).message : (e as Error).message}`,
        {
          hint: `check --endpoint ${this.o.endpoint} (is the store reachable from here?)`,
          details: { method, url, endpoint: this.o.endpoint },
          cause: e,
        },
      );
    }
    if (res.status === 403 || res.status === 401) {
      const text = await res.text().catch(() => '');
      const code = /<Code>([^<]*)<\/Code>/.exec(text)?.[1] ?? String(res.status);
      throw new SwpkgError('E_ACCESS_DENIED', `${method} ${url}: ${code}`, {
        hint: 'check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, --region and the bucket policy',
        details: { method, url, status: res.status, s3Code: code },
      });
    }
    if (res.status === 404) {
      const text = await res
        .clone()
        .text()
        .catch(() => '');
      if (text.includes('<Code>NoSuchBucket</Code>')) {
        throw new SwpkgError('E_NOT_FOUND', `bucket ${this.o.bucket} does not exist at ${this.o.endpoint}`, {
          hint: 'create the bucket first (and let clients read it: a public-read policy or a CDN with origin access)',
          details: { bucket: this.o.bucket, endpoint: this.o.endpoint },
        });
      }
    }
    return res;
  }

  private async unexpected(method: string, url: string, res: Response): Promise<SwpkgError> {
    const text = await res.text().catch(() => '');
    const code = /<Code>([^<]*)<\/Code>/.exec(text)?.[1];
    return new SwpkgError('E_HTTP', `${method} ${url}: HTTP ${res.status}${code ? ` ${code}` : ''}`, {
      details: { method, url, status: res.status, ...(code ? { s3Code: code } : {}) },
    });
  }

  async read(path: string, maxBytes: number): Promise<Uint8Array | undefined> {
    return (await this.get(path, maxBytes))?.bytes;
  }

  private async get(path: string, maxBytes: number): Promise<{ bytes: Uint8Array; etag: string } | undefined> {
    const url = this.url(path);
    const res = await this.send('GET', url);
    if (res.status === 404) {
      await res.body?.cancel();
      return undefined;
    }
    if (!res.ok) throw await this.unexpected('GET', url, res);
    const length = Number(res.headers.get('content-length') ?? '0');
    if (length > maxBytes) {
      await res.body?.cancel();
      throw new SwpkgError('E_TOO_LARGE', `${this.where}/${path} is ${length} bytes, over ${maxBytes}`, {
        details: { path, size: length },
      });
    }
    return { bytes: new Uint8Array(await res.arrayBuffer()), etag: res.headers.get('etag') ?? '' };
  }

  async readPointer(path: string, maxBytes: number): Promise<{ bytes?: Uint8Array; token: string | null }> {
    const r = await this.get(path, maxBytes);
    return r === undefined ? { token: null } : { bytes: r.bytes, token: r.etag };
  }

  private async listKeys(prefix: string, delimiter: boolean, max?: number): Promise<string[]> {
    const out: string[] = [];
    let token: string | undefined;
    for (;;) {
      const q = new URLSearchParams({ 'list-type': '2', prefix });
      if (delimiter) q.set('delimiter', '/');
      if (max !== undefined) q.set('max-keys', String(max));
      if (token) q.set('continuation-token', token);
      const url = `${this.base}?${q.toString()}`;
      const res = await this.send('GET', url);
      if (!res.ok) throw await this.unexpected('GET', url, res);
      const xml = await res.text();
      for (const m of xml.matchAll(/<Contents>[\s\S]*?<Key>([^<]*)<\/Key>/g)) out.push(xmlText(m[1]!));
      for (const m of xml.matchAll(/<CommonPrefixes>\s*<Prefix>([^<]*)<\/Prefix>/g)) out.push(xmlText(m[1]!));
      if (max !== undefined || !/<IsTruncated>true<\/IsTruncated>/.test(xml)) return out;
      token = /<NextContinuationToken>([^<]*)<\/NextContinuationToken>/.exec(xml)?.[1];
      if (!token) return out;
      token = xmlText(token);
    }
  }

  async list(dir: string): Promise<string[]> {
    const prefix = `${this.key(dir)}/`;
    return (await this.listKeys(prefix, true)).filter((k) => !k.endsWith('/')).map((k) => k.slice(prefix.length));
  }

  async folders(dir: string): Promise<string[]> {
    const prefix = `${this.key(dir)}/`;
    // With a delimiter, the "folders" come back as common prefixes, each ending in the delimiter.
    return (await this.listKeys(prefix, true)).filter((k) => k.endsWith('/')).map((k) => k.slice(prefix.length, -1));
  }

  async hasAnything(): Promise<boolean> {
    return (await this.listKeys(this.o.prefix ? `${this.o.prefix}/` : '', false, 1)).length > 0;
  }

  async sha256Of(path: string): Promise<string | undefined> {
    const url = this.url(path);
    const head = await this.send('HEAD', url);
    if (head.status === 404) return undefined;
    if (!head.ok) throw await this.unexpected('HEAD', url, head);
    const meta = head.headers.get(SHA_HEADER);
    // Body and metadata land in one PUT, so the hash recorded at upload describes these bytes;
    // an object written by other means lacks it and is hashed from its bytes.
    if (meta && /^[0-9a-f]{64}$/.test(meta)) return meta;
    return this.hashObject(path);
  }

  private async hashObject(path: string): Promise<string | undefined> {
    const url = this.url(path);
    const res = await this.send('GET', url, { signal: AbortSignal.timeout(30 * 60_000) });
    if (res.status === 404) return undefined;
    if (!res.ok || !res.body) throw await this.unexpected('GET', url, res);
    const h = createHash('sha256');
    for await (const chunk of res.body) h.update(chunk);
    return h.digest('hex');
  }

  async putImmutable(path: string, body: Body, sha256: string): Promise<'created' | 'same'> {
    const url = this.url(path);
    const headers: Record<string, string> = {
      'if-none-match': '*',
      'cache-control': IMMUTABLE_CACHE,
      [SHA_HEADER]: sha256,
      'content-type': contentType(path),
    };
    let res: Response;
    if ('file' in body) {
      headers['content-length'] = String(body.size);
      headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
      const file = body.file;
      res = await this.sendWrite('PUT', url, () => ({
        headers,
        body: fileStream(file),
        signal: AbortSignal.timeout(30 * 60_000),
        duplex: 'half',
      }));
    } else {
      const bytes = body.bytes;
      res = await this.sendWrite('PUT', url, () => ({ headers, body: bodyBytes(bytes) }));
    }
    if (res.ok) {
      await res.body?.cancel();
      return 'created';
    }
    if (res.status === 412 || res.status === 409) {
      await res.body?.cancel();
      // Create-only refused: the name is taken. Same bytes are a rerun; different bytes never replace it.
      const published = await this.hashObject(path);
      if (published === sha256) return 'same';
      throw immutableClash(this.where, path, published ?? '(vanished)', sha256);
    }
    throw await this.unexpected('PUT', url, res);
  }

  async putMutable(path: string, bytes: Uint8Array | string): Promise<void> {
    const url = this.url(path);
    const res = await this.sendWrite('PUT', url, () => ({
      headers: { 'cache-control': POINTER_CACHE, 'content-type': contentType(path) },
      body: bodyBytes(bytes),
    }));
    if (!res.ok) throw await this.unexpected('PUT', url, res);
    await res.body?.cancel();
  }

  async swapPointer(path: string, bytes: Uint8Array | string, token: string | null): Promise<void> {
    const url = this.url(path);
    const res = await this.sendWrite('PUT', url, () => ({
      headers: {
        'cache-control': POINTER_CACHE,
        'content-type': contentType(path),
        // The bare ETag: Ceph RGW 16 compares a PUT's If-Match without the quotes (a quoted one never matches).
        ...(token === null ? { 'if-none-match': '*' } : { 'if-match': token.replace(/^(W\/)?"|"$/g, '') }),
      },
      body: bodyBytes(bytes),
    }));
    if (res.status === 412 || res.status === 409) {
      await res.body?.cancel();
      throw raceLost(this.where, path);
    }
    if (!res.ok) throw await this.unexpected('PUT', url, res);
    await res.body?.cancel();
  }

  async remove(path: string): Promise<void> {
    const url = this.url(path);
    const res = await this.send('DELETE', url);
    if (!res.ok && res.status !== 404) throw await this.unexpected('DELETE', url, res);
    await res.body?.cancel();
  }
}

function xmlText(s: string): string {
  return s
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&amp;/g, '&');
}

function contentType(path: string): string {
  if (path.endsWith('.json') || path.endsWith('.pub')) return 'application/json';
  if (path.endsWith('.html')) return 'text/html; charset=utf-8';
  if (path.endsWith('.sha256')) return 'text/plain; charset=utf-8';
  return 'application/octet-stream';
}
