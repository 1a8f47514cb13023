/**
 * One verification of a web root written by bench/client/catalog-10k.ts: what `pkg update`
 * does with the catalog bytes it downloaded (envelope, signature, strict parse, checks), with
 * verifyCatalogStream where the tree has it (each entry dropped once counted, as pkg update drops
 * it once indexed), else verifyCatalog. verify-65k.sh bundles it against this tree's catalog/
 * and a baseline commit's.
 *
 *   node verify-65k.mjs --dir DIR     reads DIR/www/roots/1.json and DIR/www/catalog.json
 *
 * Prints one JSON line: {packages, bytes, seconds} (seconds: the timed part, read + verify).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as core from '../../catalog/index.js';

const i = process.argv.indexOf('--dir');
if (i < 0 || !process.argv[i + 1]) throw new Error('usage: verify-65k.mjs --dir DIR');
const www = join(process.argv[i + 1]!, 'www');
const root = core.parseRoot(await readFile(join(www, 'roots', '1.json')), 'roots/1.json');
const t0 = performance.now();
const bytes = await readFile(join(www, 'catalog.json'));
const o = { root, now: new Date(), client: null, maxBytes: 256 * 1024 * 1024 };
// Looked up at run time: older commits have no streaming form.
const stream = (core as Record<string, unknown>)['verifyCatalogStream'] as typeof core.verifyCatalogStream | undefined;
let packages = 0;
if (stream) stream(bytes, o, () => packages++);
else packages = core.verifyCatalog(bytes, o).signed.packages.length;
const seconds = (performance.now() - t0) / 1000;
process.stdout.write(`${JSON.stringify({ packages, bytes: bytes.length, seconds, mode: stream ? 'stream' : 'document' })}\n`);
