import { expect } from 'chai';
import type { Principal } from '../../lib/auth/roles.js';
import { StreamSlots } from '../../lib/dashboard/stream-slots.js';

const tenant = (name: string): Principal => ({ kind: 'token', subject: name, role: 'viewer', tenant: name, tokenId: `token-${name}`, expiresAt: Number.MAX_SAFE_INTEGER });

/** The live-view slots' fair share (32 slots, 8 per holder, a share of 4), without a server. */
describe('stream slots: a fair share of the live views', () => {
  it('serves eight holders when full, refuses a ninth and a holder at its share, and releases an evicted slot once', () => {
    const slots = new StreamSlots(32, 8, 4);
    const evicted: string[] = [];
    const releases: (() => void)[] = [];
    for (const name of ['a', 'b', 'c', 'd']) {
      for (let n = 0; n < 8; n += 1) {
        const release = slots.take(tenant(name), () => evicted.push(`${name}${n}`));
        expect(release, `${name} stream ${n}`).to.be.a('function');
        releases.push(release as () => void);
      }
    }
    expect(slots.take(tenant('a'), () => undefined), 'a holder above its share, none free').to.equal(undefined);
    for (const name of ['e', 'f', 'g', 'h']) {
      for (let n = 0; n < 4; n += 1) expect(slots.take(tenant(name), () => undefined), `${name} stream ${n}`).to.be.a('function');
    }
    // Each of a, b, c, d gave back its newest four streams.
    expect(evicted.sort()).to.deep.equal(['a4', 'a5', 'a6', 'a7', 'b4', 'b5', 'b6', 'b7', 'c4', 'c5', 'c6', 'c7', 'd4', 'd5', 'd6', 'd7']);
    expect(slots.take(tenant('i'), () => undefined), 'a ninth holder: everyone at its share').to.equal(undefined);
    // The evicted stream's own release (its connection closing) frees nothing more.
    (releases[7] as () => void)();
    expect(slots.take(tenant('i'), () => undefined)).to.equal(undefined);
    (releases[0] as () => void)();
    expect(slots.take(tenant('i'), () => undefined), 'a slot freed by a').to.be.a('function');
  });
});
