/**
 * One `verifyCatalog` of a web root written by bench/client/catalog-10k.ts: what `pkg update`
 * does with the catalog bytes it downloaded (envelope, signature, strict parse, checks).
 * verify-65k.sh bundles it against this tree's catalog/ and a baseline commit's.
 *
 *   node verify-65k.mjs --dir DIR     reads DIR/www/roots/1.json and DIR/www/catalog.json
 *
 * Prints one JSON line: {packages, bytes, seconds} (seconds: the timed part, read + verify).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseRoot, verifyCatalog } from '../../catalog/index.js';

const i = process.argv.indexOf('--dir');
if (i < 0 || !process.argv[i + 1]) throw new Error('usage: verify-65k.mjs --dir DIR');
const www = join(process.argv[i + 1]!, 'www');
const root = parseRoot(await readFile(join(www, 'roots', '1.json')), 'roots/1.json');
const t0 = performance.now();
const bytes = await readFile(join(www, 'catalog.json'));
const doc = verifyCatalog(bytes, { root, now: new Date(), client: null, maxBytes: 256 * 1024 * 1024 });
const seconds = (performance.now() - t0) / 1000;
process.stdout.write(`${JSON.stringify({ packages: doc.signed.packages.length, bytes: bytes.length, seconds })}\n`);
