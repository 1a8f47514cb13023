import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';

/** SHA-256 of bytes as lowercase hex. node:crypto is used for bulk hashing: it measures faster than JS. */
export function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Streams a file through SHA-256; never holds more than one chunk in memory. */
export async function sha256File(path: string): Promise<{ sha256: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    const buf = chunk as Buffer;
    size += buf.length;
    h.update(buf);
  }
  return { sha256: h.digest('hex'), size };
}

export const SHA256_HEX = /^[0-9a-f]{64}$/;
