import { expect } from 'chai';
import { LIVENESS_STATUSES } from '../../lib/attestation/liveness-decision.js';
import { validateDto } from '../../lib/http/dto-validation.js';
import { RequestValidationError } from '../../lib/http/http-errors.js';
import { LivenessStatusReply } from '../../lib/verifier/liveness/liveness-client.js';

const REPLY = {
  agent_id: 'host-1',
  identity_mode: 'id-only',
  trust_level: 'id-only',
  liveness_status: 'alive',
  attestation_status: 'LIVE (no integrity evidence)',
  integrity_evidence: 'none',
  misses: 0,
  last_seen: 1_796_000_000,
  last_failure: null,
};

describe('liveness client: the status reply it accepts', function () {
  it('accepts every liveness status the engine decides', function () {
    for (const status of LIVENESS_STATUSES) {
      expect(validateDto(LivenessStatusReply, { ...REPLY, liveness_status: status }, 'results').liveness_status).to.equal(status);
    }
  });

  it('refuses any other status, listing them in the order of LIVENESS_STATUSES', function () {
    expect(() => validateDto(LivenessStatusReply, { ...REPLY, liveness_status: 'PASS' }, 'results'))
      .to.throw(RequestValidationError)
      .with.property('message', 'results.liveness_status: must be one of the following values: alive, pending, unreachable, failed');
  });

  it('refuses stale, freshness_bound and metadata sent as null (a null bound was read as 0 s: every answer stale), and takes them absent', function () {
    for (const field of ['stale', 'freshness_bound', 'metadata']) {
      expect(() => validateDto(LivenessStatusReply, { ...REPLY, [field]: null }, 'results'), field).to.throw(RequestValidationError, `results.${field}: `);
    }
    expect(validateDto(LivenessStatusReply, REPLY, 'results').freshness_bound).to.equal(undefined);
  });
});
