/**
 * Ed25519 verification through `verifyBytes`, one step per process so each
 * reports its own CPU time and peak RSS. verify-ed25519.sh bundles this file
 * against the current `catalog/` and against an older commit's (the pure-JS
 * verifier), and runs the two in turn.
 *
 *   node verify-ed25519.mjs small --n 2000    N good signatures over 1.5 KiB messages by 8 keys
 *                                              (local .swpkg files: one per package)
 *   node verify-ed25519.mjs bad --n 500       the same with each message altered after signing:
 *                                              what a refusal costs
 *   node verify-ed25519.mjs large --mib 32    one signature over a 32 MiB message (a catalog)
 *
 * Prints one JSON line: {step, impl, n, bytes, cpuSeconds, wallSeconds, rssBeforeKiB, maxRssKiB}.
 * `impl` is passed in by the script (--impl). Exits non-zero if any verdict is wrong, so a
 * faster but broken verifier cannot report a figure.
 */
import { createHash } from 'node:crypto';
import * as core from '../../catalog/index.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
}

/** Deterministic bytes (SHA-256 in counter mode): both implementations see the same input. */
function bytes(seed: string, n: number): Buffer {
  const out = Buffer.alloc(n);
  for (let off = 0, i = 0; off < n; off += 32, i++) createHash('sha256').update(`${seed}/${i}`).digest().copy(out, off);
  return out;
}

function measure(work: () => number): { cpuSeconds: number; wallSeconds: number; ok: number } {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const ok = work();
  const wallSeconds = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  return { cpuSeconds: (c.user + c.system) / 1e6, wallSeconds, ok };
}

const step = process.argv[2];
const impl = arg('impl', 'current');
if (step === 'small' || step === 'bad') {
  const n = Number(arg('n', '2000'));
  const keys = Array.from({ length: 8 }, (_, i) => core.keyPairFromSeed(bytes(`key${i}`, 32)));
  const items = Array.from({ length: n }, (_, i) => {
    const key = keys[i % keys.length]!;
    const msg = bytes(`msg${i}`, 1536);
    const sig = core.signBytes(msg, key).sig;
    if (step === 'bad') msg[0]! ^= 1;
    return { msg, sig, pub: core.bytesToHex(key.publicKey), want: step === 'small' };
  });
  const rssBeforeKiB = process.resourceUsage().maxRSS;
  const r = measure(() => items.filter((x) => core.verifyBytes(x.msg, x.sig, x.pub) === x.want).length);
  if (r.ok !== n) throw new Error(`${n - r.ok} wrong verdicts`);
  const line = { step, impl, n, bytes: 1536, cpuSeconds: r.cpuSeconds, wallSeconds: r.wallSeconds, rssBeforeKiB };
  console.log(JSON.stringify({ ...line, maxRssKiB: process.resourceUsage().maxRSS }));
} else if (step === 'large') {
  const size = Number(arg('mib', '32')) * 1024 * 1024;
  const key = core.keyPairFromSeed(bytes('large', 32));
  const msg = Buffer.alloc(size, 'a catalog payload ');
  const sig = core.signBytes(msg, key).sig;
  const pub = core.bytesToHex(key.publicKey);
  const rssBeforeKiB = process.resourceUsage().maxRSS;
  const r = measure(() => (core.verifyBytes(msg, sig, pub) ? 1 : 0));
  if (r.ok !== 1) throw new Error('the signature did not verify');
  const line = { step, impl, n: 1, bytes: size, cpuSeconds: r.cpuSeconds, wallSeconds: r.wallSeconds, rssBeforeKiB };
  console.log(JSON.stringify({ ...line, maxRssKiB: process.resourceUsage().maxRSS }));
} else {
  console.error('usage: verify-ed25519.mjs small|bad|large [--n N] [--mib M] [--impl NAME]');
  process.exit(2);
}
