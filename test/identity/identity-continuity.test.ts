import { expect } from 'chai';
import { sameProofKey } from '../../lib/identity/host-secret-proof.js';
import { decideHostIdClaim, decideIdentityContinuity, type OfferedIdentity, type StoredIdentity } from '../../lib/registrar/identity-continuity.js';

const stored = (overrides: Partial<StoredIdentity> = {}): StoredIdentity => ({
  agentId: 'a1',
  identityMode: 'tpm',
  trustLevel: 'hardware-tpm',
  ekTpm: 'EK',
  hostIdHash: 'h1',
  hostProofKey: null,
  modeChangeTo: null,
  active: true,
  ...overrides,
});
const offer = (overrides: Partial<OfferedIdentity> = {}): OfferedIdentity => ({
  mode: 'tpm',
  trustLevel: 'hardware-tpm',
  ekTpm: 'EK',
  hostIdHash: 'h1',
  hostProofKey: null,
  ...overrides,
});

describe('identity continuity (no silent downgrade)', function () {
  it('accepts a first registration and the same identity again', function () {
    expect(decideIdentityContinuity(undefined, [], offer())).to.deep.equal({ kind: 'accept', fresh: false });
    expect(decideIdentityContinuity(stored(), [stored()], offer())).to.deep.equal({ kind: 'accept', fresh: false });
  });

  it('refuses another mode under the same id unless an admin allowed it', function () {
    const down = decideIdentityContinuity(stored(), [], offer({ mode: 'id-only', trustLevel: 'id-only', ekTpm: null }));
    expect(down).to.deep.include({ kind: 'refuse', flag: 'a1' });
    expect(decideIdentityContinuity(stored({ modeChangeTo: 'id-only' }), [], offer({ mode: 'id-only', trustLevel: 'id-only', ekTpm: null }))).to.deep.equal({ kind: 'accept', fresh: true });
    // The permission is for one mode only.
    expect(decideIdentityContinuity(stored({ modeChangeTo: 'id-secret' }), [], offer({ mode: 'id-only', trustLevel: 'id-only', ekTpm: null })).kind).to.equal('refuse');
  });

  it('refuses a weaker registration of a host id held at a stronger level under another agent id, flagging that one', function () {
    const decision = decideIdentityContinuity(undefined, [stored({ agentId: 'tpm-node' })], offer({ mode: 'id-secret', trustLevel: 'id-secret', ekTpm: null, hostProofKey: 'k' }));
    expect(decision).to.deep.include({ kind: 'refuse', flag: 'tpm-node' });
  });

  it('refuses a tpm registration whose EK no longer chains (hardware-tpm to emulated-tpm)', function () {
    expect(decideIdentityContinuity(stored(), [], offer({ trustLevel: 'emulated-tpm' })).kind).to.equal('refuse');
  });

  it('refuses another host id, another secret, or a second agent id claiming an id-secret host', function () {
    const [k1, k2] = ['a1'.repeat(32), 'b2'.repeat(32)];
    const secret = stored({ identityMode: 'id-secret', trustLevel: 'id-secret', ekTpm: null, hostProofKey: k1 });
    const offered = offer({ mode: 'id-secret', trustLevel: 'id-secret', ekTpm: null, hostProofKey: k1 });
    expect(decideIdentityContinuity(secret, [secret], offered).kind).to.equal('accept');
    expect(decideIdentityContinuity(secret, [secret], { ...offered, hostProofKey: null }).kind).to.equal('accept');
    expect(decideIdentityContinuity(secret, [], { ...offered, hostIdHash: 'h2' }).kind).to.equal('refuse');
    expect(decideIdentityContinuity(secret, [secret], { ...offered, hostProofKey: k2 }).kind).to.equal('refuse');
    expect(decideIdentityContinuity(undefined, [secret], { ...offered, hostProofKey: k2 })).to.deep.include({ kind: 'refuse', flag: 'a1' });
  });

  it('a never-activated record under the same id refuses nothing: another mode, level, host id or secret replaces it (hunt H6)', function () {
    const unproven = stored({ active: false });
    for (const offered of [
      offer({ mode: 'id-only', trustLevel: 'id-only', ekTpm: null }),
      offer({ trustLevel: 'emulated-tpm' }),
      offer({ hostIdHash: 'h2' }),
    ]) {
      expect(decideIdentityContinuity(unproven, [unproven], offered)).to.deep.equal({ kind: 'accept', fresh: false });
    }
    const secret = stored({ identityMode: 'id-secret', trustLevel: 'id-secret', ekTpm: null, hostProofKey: 'a1'.repeat(32), active: false });
    expect(decideIdentityContinuity(secret, [secret], offer({ mode: 'id-secret', trustLevel: 'id-secret', ekTpm: null, hostProofKey: 'b2'.repeat(32) })).kind).to.equal('accept');
    // The host id it names is still judged against the records that hold it.
    const holder = stored({ agentId: 'holder', hostIdHash: 'h2' });
    expect(decideIdentityContinuity(unproven, [holder], offer({ mode: 'id-only', trustLevel: 'id-only', ekTpm: null, hostIdHash: 'h2' }))).to.deep.include({ kind: 'refuse', flag: 'holder' });
  });

  it('only an activated record holds its host id: a never-activated one, however strong, refuses nobody', function () {
    const unproven = [stored({ agentId: 'squatter', identityMode: 'emulated-tpm', trustLevel: 'emulated-tpm', active: false })];
    const secret = offer({ mode: 'id-secret', trustLevel: 'id-secret', ekTpm: null, hostProofKey: 'k' });
    expect(decideIdentityContinuity(undefined, unproven, secret)).to.deep.equal({ kind: 'accept', fresh: false });
    const otherSecret = [stored({ agentId: 'squatter', identityMode: 'id-secret', trustLevel: 'id-secret', ekTpm: null, hostProofKey: 'aa', active: false })];
    expect(decideIdentityContinuity(undefined, otherSecret, { ...secret, hostProofKey: 'bb' }).kind).to.equal('accept');
    expect(decideHostIdClaim('mine', [...unproven, ...otherSecret], secret).kind).to.equal('accept');
  });

  it('an active record coming back with the host id it holds is not refused by another holder; a new, unproven or re-moded one is', function () {
    const holder = stored({ agentId: 'later', identityMode: 'emulated-tpm', trustLevel: 'emulated-tpm' });
    const mine = stored({ agentId: 'mine', identityMode: 'id-secret', trustLevel: 'id-secret', ekTpm: null, hostProofKey: 'aa' });
    const again = offer({ mode: 'id-secret', trustLevel: 'id-secret', ekTpm: null, hostProofKey: null });
    expect(decideIdentityContinuity(mine, [mine, holder], again)).to.deep.equal({ kind: 'accept', fresh: false });
    expect(decideIdentityContinuity({ ...mine, active: false }, [mine, holder], again)).to.deep.include({ kind: 'refuse', flag: 'later' });
    expect(decideIdentityContinuity(undefined, [holder], { ...again, hostProofKey: 'aa' })).to.deep.include({ kind: 'refuse', flag: 'later' });
    // Coming back with a host id it did not hold before is a claim like any other.
    expect(decideIdentityContinuity({ ...mine, hostIdHash: null }, [holder], again).kind).to.equal('refuse');
    // Even with no holder, an activated record cannot take one by registering again, which proves nothing; an unproven one may.
    expect(decideIdentityContinuity({ ...mine, hostIdHash: null }, [], again)).to.deep.include({ kind: 'refuse', flag: 'mine' });
    expect(decideIdentityContinuity({ ...mine, hostIdHash: null, active: false }, [], again).kind).to.equal('accept');
    const moded = stored({ agentId: 'mine', modeChangeTo: 'id-only' });
    const strongerHolder = stored({ agentId: 'other' });
    expect(decideIdentityContinuity(moded, [strongerHolder], offer({ mode: 'id-only', trustLevel: 'id-only', ekTpm: null })).kind).to.equal('refuse');
  });

  it('an activation is judged against the holders too, leaving out the record itself', function () {
    const secret = offer({ mode: 'id-secret', trustLevel: 'id-secret', ekTpm: null, hostProofKey: 'aa' });
    const self = stored({ agentId: 'mine', identityMode: 'id-secret', trustLevel: 'id-secret', ekTpm: null, hostProofKey: 'aa', active: false });
    expect(decideHostIdClaim('mine', [self], secret).kind).to.equal('accept');
    const first = stored({ agentId: 'first', identityMode: 'id-secret', trustLevel: 'id-secret', ekTpm: null, hostProofKey: 'bb' });
    expect(decideHostIdClaim('mine', [self, first], secret)).to.deep.include({ kind: 'refuse', flag: 'first' });
    expect(decideHostIdClaim('mine', [self, { ...first, hostProofKey: 'aa' }], secret).kind).to.equal('accept');
  });

  it('compares proof keys as bytes: the same key in capitals is the same, another length or non-hex is another, and nothing throws', function () {
    const key = 'ab'.repeat(32);
    const secret = stored({ identityMode: 'id-secret', trustLevel: 'id-secret', ekTpm: null, hostProofKey: key });
    const offered = offer({ mode: 'id-secret', trustLevel: 'id-secret', ekTpm: null });
    expect(decideIdentityContinuity(secret, [secret], { ...offered, hostProofKey: key.toUpperCase() }).kind).to.equal('accept');
    expect(decideIdentityContinuity(undefined, [secret], { ...offered, hostProofKey: key.toUpperCase() }).kind).to.equal('accept');
    expect(decideIdentityContinuity(secret, [secret], { ...offered, hostProofKey: 'ab'.repeat(31) }).kind).to.equal('refuse');
    expect(decideIdentityContinuity(undefined, [secret], { ...offered, hostProofKey: 'ab' }).kind).to.equal('refuse');
    expect(sameProofKey(key, key)).to.equal(true);
    expect(sameProofKey('zz', 'yy'), 'two malformed texts both decode to nothing').to.equal(false);
    expect(sameProofKey('abc', 'abc'), 'half a byte').to.equal(false);
    expect(sameProofKey(null, null)).to.equal(false);
    expect(sameProofKey(key, null)).to.equal(false);
  });
});
