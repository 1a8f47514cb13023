import { describe, expect, it } from 'vitest';
import { renderSystemDeployment, type SystemDeployment } from '../../acceptance/system-slots.js';

const h = (c: string): string => c.repeat(64);
const art = (c: string, size = 100): { path: string; size: number; sha256: string } => ({ path: `system/x/${c}`, size, sha256: h(c) });

function deployment(over: Partial<SystemDeployment> = {}): SystemDeployment {
  return {
    disk: '/run/system.img',
    status: {
      active: 'b',
      nextBoot: 'b',
      slots: [
        { slot: 'a', state: 'good', entry: 'slotA.conf', version: 'abc123abc123', triesLeft: null },
        { slot: 'b', state: 'trying', entry: 'slotB+2-1.conf', version: '2', triesLeft: 2 },
      ],
      lastFailure: null,
    },
    espFiles: { a: { kernel: h('1'), initramfs: h('2') }, b: { kernel: h('3'), initramfs: null } },
    releases: [{ version: 2, artifacts: { kernel: art('3'), initramfs: art('4'), base: art('5', 4096) } }],
    installed: { version: 'abc123abc123', kernel: h('1'), initramfs: h('2'), base: h('6') },
    ...over,
  };
}

describe('manifest.txt A/B system section', () => {
  it('lists both slots with state, version, tries left, their hashes, the active slot and the rollback slot', () => {
    const text = renderSystemDeployment(deployment()).join('\n');
    expect(text).toContain('active slot     b; next boot b');
    expect(text).toMatch(/slot A {10}good, version abc123abc123, entry slotA\.conf/);
    expect(text).toMatch(/slot B {10}trying \(2 tries left\), version 2, entry slotB\+2-1\.conf/);
    expect(text).toContain(`vmlinuz sha256 ${h('1')}, initramfs sha256 ${h('2')}`);
    // A file the guest could not read back is named missing, not left out.
    expect(text).toContain(`vmlinuz sha256 ${h('3')}, initramfs sha256 missing`);
    expect(text).toContain(`installed artifact set: base sha256 ${h('6')}`);
    expect(text).toContain(`release 2 signed base sha256 ${h('5')} (4096 bytes)`);
    expect(text).toContain('rollback set    slot a (version abc123abc123)');
    expect(text).toContain('last failure    none');
  });

  it('names the failed slot and offers no rollback when the other slot is bad', () => {
    const d = deployment({
      status: {
        active: 'a',
        nextBoot: 'a',
        slots: [
          { slot: 'a', state: 'good', entry: 'slotA.conf', version: 'abc123abc123', triesLeft: null },
          { slot: 'b', state: 'bad', entry: 'slotB+0-2.conf', version: '2', triesLeft: 0 },
        ],
        lastFailure: { slot: 'b', version: '2', triesDone: 2 },
      },
    });
    const text = renderSystemDeployment(d).join('\n');
    expect(text).toContain('last failure    slot b version 2 after 2 tries');
    expect(text).toContain('rollback set    none (no other good slot)');
    expect(text).toMatch(/slot B {10}bad \(0 tries left\)/);
  });

  it('says so when no system scenario ran or the guest never reported', () => {
    expect(renderSystemDeployment(undefined).join('\n')).toContain('no system scenario ran');
    expect(renderSystemDeployment(deployment({ status: null })).join('\n')).toContain('never reported pkg system status');
  });
});
