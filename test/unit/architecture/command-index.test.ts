import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
// @ts-expect-error -- plain ESM script without types
import { commandIndex } from '../../../scripts/gen-command-index.mjs';

describe('command index', () => {
  for (const bin of ['swpkg', 'swport']) {
    it(`cli/${bin}/commands.ts lists exactly the files under cli/${bin}/commands/`, () => {
      const expected = (commandIndex as (b: string) => string)(bin);
      expect(readFileSync(join(import.meta.dirname, '../../../cli', bin, 'commands.ts'), 'utf8')).toBe(expected);
    });
  }
});
