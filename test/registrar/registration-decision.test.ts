import { expect } from 'chai';
import { TPM_IDENTITY } from './helpers/stored-identity.js';
import type { StoredAgent } from '../../lib/registrar/registrar-agent-repository.js';
import type { CheckedRegistration } from '../../lib/registrar/registration-check.js';
import { applyActivation, decideRegistration, type RegistrationOffer } from '../../lib/registrar/registration-decision.js';

const CERT = Uint8Array.from([0x30, 0x03, 0x02, 0x01, 0x01]);

function checked(overrides: Partial<CheckedRegistration & RegistrationOffer> = {}): CheckedRegistration & RegistrationOffer {
  return {
    identityMode: 'tpm',
    trustLevel: 'hardware-tpm',
    hostIdHash: null,
    hostProofKey: null,
    ekTpm: 'RUs=',
    ekPublic: {} as CheckedRegistration['ekPublic'],
    ekKeyHash: 'ab'.repeat(32),
    ekCertDer: CERT,
    ekCertChain: [],
    aikTpm: 'QUs=',
    akName: new Uint8Array(34),
    ip: '10.0.0.1',
    port: 9002,
    mtlsCert: 'disabled',
    ...overrides,
  };
}

function stored(overrides: Partial<StoredAgent> = {}): StoredAgent {
  return {
    agentId: 'a1',
    ekTpm: 'RUs=',
    ekCert: Buffer.from(CERT).toString('base64'),
    aikTpm: 'QUs=',
    activationKey: 'b2xk',
    active: true,
    ip: '10.0.0.9',
    port: 9000,
    mtlsCert: 'disabled',
    pendingContact: null,
    regcount: 1,
    ...TPM_IDENTITY,
    ...overrides,
  };
}

function conflictOf(run: () => unknown): { code: string; message: string } {
  try {
    run();
  } catch (error) {
    return error as { code: string; message: string };
  }
  throw new Error('expected a refusal');
}

describe('registrar: registration decision', function () {
  it('creates an inactive record with regcount 1', function () {
    const next = decideRegistration('a1', undefined, checked(), 'bmV3');
    expect(next).to.deep.equal({
      ekTpm: 'RUs=',
      ekCert: Buffer.from(CERT).toString('base64'),
      aikTpm: 'QUs=',
      activationKey: 'bmV3',
      active: false,
      ip: '10.0.0.1',
      port: 9002,
      mtlsCert: 'disabled',
      pendingContact: null,
      regcount: 1,
      ...TPM_IDENTITY,
    });
  });

  it('re-registration of an active agent keeps active, regcount and contact; new contact waits for activation', function () {
    const next = decideRegistration('a1', stored(), checked(), 'bmV3');
    expect(next.active).to.equal(true);
    expect(next.regcount).to.equal(1);
    expect(next.activationKey).to.equal('bmV3');
    expect(next).to.include({ ip: '10.0.0.9', port: 9000, mtlsCert: 'disabled' });
    expect(next.pendingContact).to.deep.equal({ ip: '10.0.0.1', port: 9002, mtlsCert: 'disabled' });
    const activated = applyActivation({ agentId: 'a1', ...next }, 'spent');
    expect(activated).to.include({ active: true, ip: '10.0.0.1', port: 9002, mtlsCert: 'disabled', pendingContact: null, activationKey: 'spent' });
  });

  it('re-registration of an active agent with the same contact proposes nothing', function () {
    const next = decideRegistration('a1', stored({ ip: '10.0.0.1', port: 9002 }), checked(), 'bmV3');
    expect(next.pendingContact).to.equal(null);
  });

  it('re-registration of a never-activated agent replaces its contact at once', function () {
    const next = decideRegistration('a1', stored({ active: false }), checked(), 'bmV3');
    expect(next).to.include({ active: false, ip: '10.0.0.1', port: 9002, pendingContact: null });
  });

  it('adding a previously absent EK certificate is allowed and counts as a registration', function () {
    const next = decideRegistration('a1', stored({ ekCert: null }), checked(), 'bmV3');
    expect(next.regcount).to.equal(2);
  });

  for (const [what, incoming] of [
    ['EK', { ekTpm: 'T1RIRVI=' }],
    ['AK', { aikTpm: 'T1RIRVI=' }],
    ['EK certificate', { ekCertDer: Uint8Array.from([0x30, 0x00]) }],
  ] as const) {
    it(`replaces a never-activated record claiming another ${what}: nothing of the old one is kept but its regcount (hunt H6)`, function () {
      const squat = stored({ active: false, hostIdHash: 'cd'.repeat(32), flaggedReason: 'refused', modeChangeTo: 'id-only', regcount: 3 });
      const next = decideRegistration('a1', squat, checked(incoming), 'bmV3');
      expect(next).to.include({ active: false, activationKey: 'bmV3', hostIdHash: null, flaggedReason: null, modeChangeTo: null, regcount: 4, ip: '10.0.0.1' });
      expect(next).to.include({ ekTpm: checked(incoming).ekTpm, aikTpm: checked(incoming).aikTpm });
    });
  }

  it('keeps a never-activated record\'s host id and flag when the same identity registers again with that host id', function () {
    const next = decideRegistration('a1', stored({ active: false, hostIdHash: 'cd'.repeat(32), flaggedReason: 'refused' }), checked({ hostIdHash: 'cd'.repeat(32) }), 'bmV3');
    expect(next).to.include({ hostIdHash: 'cd'.repeat(32), flaggedReason: 'refused', regcount: 1 });
  });

  it('drops a never-activated record\'s host id when the same public EK and AK register again without it: the activation will not have proven it', function () {
    const next = decideRegistration('a1', stored({ active: false, hostIdHash: 'cd'.repeat(32), flaggedReason: 'refused' }), checked(), 'bmV3');
    expect(next).to.include({ hostIdHash: null, flaggedReason: null, regcount: 2 });
  });

  it('keeps an active record\'s host id when it registers again without it', function () {
    const next = decideRegistration('a1', stored({ hostIdHash: 'cd'.repeat(32) }), checked(), 'bmV3');
    expect(next).to.include({ hostIdHash: 'cd'.repeat(32), regcount: 1 });
  });

  for (const [field, current, incoming] of [
    ['ek_tpm', {}, { ekTpm: 'T1RIRVI=' }],
    ['aik_tpm', {}, { aikTpm: 'T1RIRVI=' }],
    ['ekcert', {}, { ekCertDer: Uint8Array.from([0x30, 0x00]) }],
    ['ekcert', {}, { ekCertDer: null }],
  ] as const) {
    it(`refuses a different ${field} with ERR_REGISTRATION_CONFLICT (${JSON.stringify(incoming)})`, function () {
      const error = conflictOf(() => decideRegistration('a1', stored(current), checked(incoming), 'bmV3'));
      expect(error.code).to.equal('ERR_REGISTRATION_CONFLICT');
      expect(error.message).to.contain('re-registration with different TPM identity is forbidden');
      expect(error.message).to.contain(field);
    });
  }
});
