import { expect } from 'chai';
import { decideIdentityContinuity, type OfferedIdentity, type StoredIdentity } from '../../lib/registrar/identity-continuity.js';

const stored = (overrides: Partial<StoredIdentity> = {}): StoredIdentity => ({
  agentId: 'a1',
  identityMode: 'tpm',
  trustLevel: 'hardware-tpm',
  ekTpm: 'EK',
  hostIdHash: 'h1',
  hostProofKey: null,
  modeChangeTo: null,
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
    const secret = stored({ identityMode: 'id-secret', trustLevel: 'id-secret', ekTpm: null, hostProofKey: 'k1' });
    const offered = offer({ mode: 'id-secret', trustLevel: 'id-secret', ekTpm: null, hostProofKey: 'k1' });
    expect(decideIdentityContinuity(secret, [secret], offered).kind).to.equal('accept');
    expect(decideIdentityContinuity(secret, [secret], { ...offered, hostProofKey: null }).kind).to.equal('accept');
    expect(decideIdentityContinuity(secret, [], { ...offered, hostIdHash: 'h2' }).kind).to.equal('refuse');
    expect(decideIdentityContinuity(secret, [secret], { ...offered, hostProofKey: 'k2' }).kind).to.equal('refuse');
    expect(decideIdentityContinuity(undefined, [secret], { ...offered, hostProofKey: 'k2' })).to.deep.include({ kind: 'refuse', flag: 'a1' });
  });
});
