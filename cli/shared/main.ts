import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { Config, run, flush } from '@oclif/core';
import { SwpkgError, didYouMean } from '../../catalog/index.js';
import { renderError } from '../../edge/index.js';

const TOPICS = {
  swpkg: {
    image: { description: 'Build the QEMU guest images and boot them.' },
    key: { description: 'Create signing keys.' },
    repo: { description: 'Index, sign, publish and check signed static repositories.' },
  },
  swport: {
    catalog: { description: 'Check and list the ports catalog.' },
    recipe: { description: 'Validate, fetch, build and package one port.' },
  },
};

const DESCRIPTIONS = {
  swpkg: 'Pack, sign, publish and check signed static package repositories.',
  swport: 'Build reproducible static packages from ports recipes.',
};

/**
 * Starts one of the two oclif binaries from the single package.json: the
 * oclif section is chosen here per binary (explicit `bin`, its own command
 * folder), so `swpkg` and `swport` share dependencies but not command trees.
 */
export async function main(bin: 'swpkg' | 'swport', argv: string[]): Promise<void> {
  const root = fileURLToPath(new URL('../../..', import.meta.url)); // dist/cli/shared -> repo root
  const pjson = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as Record<string, unknown>;
  // oclif's version line and root help name the package: each binary is its own tool there.
  pjson['name'] = bin;
  pjson['description'] = DESCRIPTIONS[bin];
  pjson['oclif'] = {
    bin,
    dirname: bin,
    commands: { strategy: 'explicit', target: `./dist/cli/${bin}/commands.js`, identifier: 'COMMANDS' },
    topicSeparator: ' ',
    topics: TOPICS[bin],
    helpOptions: { flagSortOrder: 'none' },
  };
  const config = await Config.load({ root, pjson: pjson as never });
  try {
    await run(argv, config);
  } catch (err) {
    // Only oclif's own exits (help, version, parse errors outside a command) reach here.
    const e = err as { oclif?: { exit?: number }; message?: string };
    if (e.oclif?.exit !== undefined && e.oclif.exit !== 0) {
      const unknown = /^command (\S+) not found/.exec(e.message ?? '')?.[1]?.replaceAll(':', ' ');
      const ids = config.commandIDs.map((id) => id.replaceAll(':', ' '));
      // `swpkg pubish` is near `repo publish`: a topic left out is matched on the last word.
      // When several commands end in the same word (`repo publish`, `system publish`), the first listed is suggested.
      const byLast = new Map<string, string>();
      for (const id of ids) if (!byLast.has(id.split(' ').at(-1)!)) byLast.set(id.split(' ').at(-1)!, id);
      const near =
        unknown === undefined
          ? undefined
          : (didYouMean(unknown, ids) ?? byLast.get(didYouMean(unknown.split(' ').at(-1)!, byLast.keys()) ?? ''));
      const message = unknown === undefined ? (e.message ?? 'usage') : `unknown command \`${bin} ${unknown}\``;
      const coded = new SwpkgError('E_USAGE', message, {
        hint: near ? `did you mean \`${bin} ${near}\`? (run \`${bin} --help\` for the list)` : `run \`${bin} --help\``,
      });
      process.stderr.write(renderError(coded));
      process.exitCode = coded.exitCode;
    } else if (e.oclif?.exit === undefined) {
      const coded = new SwpkgError('E_INTERNAL', e.message ?? String(err), {
        hint: 'this is a bug; please report it with the command you ran',
      });
      process.stderr.write(renderError(coded));
      process.exitCode = coded.exitCode;
    }
  } finally {
    await flush();
  }
}
