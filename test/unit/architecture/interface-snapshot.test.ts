import { describe, expect, it } from 'vitest';
import { currentInterface } from './interface.js';

/**
 * One committed snapshot of every command's id, arguments, flags and --json result shape for
 * swpkg, swport and pkg. A deliberate change updates it (`npx vitest run
 * test/unit/architecture/interface-snapshot.test.ts -u`) and shows in review as a diff of the
 * interface; an accidental one fails here.
 */
describe('the command-line interface', () => {
  it('matches interface.snapshot.json', { timeout: 180_000 }, async () => {
    const iface = currentInterface();
    for (const c of [...iface.swpkg, ...iface.swport, ...iface.pkg]) expect(c.result, `${c.id} has no result type`).not.toBe('MISSING');
    await expect(JSON.stringify(iface, null, 2) + '\n').toMatchFileSnapshot('./interface.snapshot.json');
  });
});
