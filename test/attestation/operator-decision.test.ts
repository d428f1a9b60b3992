import { expect } from 'chai';
import { operatorStatus, stalenessProblem } from '../../lib/attestation/operator-decision.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';

describe('operator decision: what our verifier tells the operator (operatorStatus)', function () {
  const now = 1_000_000;

  it('a PASS state whose last success is within the bound (plus one second of truncation) is trusted', function () {
    for (const age of [0, 10, 11]) {
      expect(operatorStatus({ operationalState: OperationalState.GET_QUOTE, lastSuccessfulAttestation: now - age }, now, 10)).to.deep.equal({ attestationStatus: 'PASS', trusted: true, stale: false });
    }
  });

  it('a PASS state older than the bound, or that never passed, is PENDING and stale, never trusted', function () {
    for (const state of [OperationalState.GET_QUOTE, OperationalState.GET_QUOTE_RETRY, OperationalState.PROVIDE_V_RETRY]) {
      expect(operatorStatus({ operationalState: state, lastSuccessfulAttestation: now - 11.5 }, now, 10)).to.deep.equal({ attestationStatus: 'PENDING', trusted: false, stale: true });
    }
    expect(operatorStatus({ operationalState: OperationalState.GET_QUOTE, lastSuccessfulAttestation: 0 }, now, 10).trusted).to.equal(false);
  });

  it('a PASS dated more than 5 s after now (stamped by a process whose clock runs ahead) is not trusted', function () {
    for (const ahead of [6, 3600]) {
      expect(operatorStatus({ operationalState: OperationalState.GET_QUOTE, lastSuccessfulAttestation: now + ahead }, now, 62.6)).to.deep.equal({ attestationStatus: 'PENDING', trusted: false, stale: true });
    }
    expect(operatorStatus({ operationalState: OperationalState.GET_QUOTE, lastSuccessfulAttestation: now + 5 }, now, 62.6).trusted, 'within the skew').to.equal(true);
  });

  it('FAIL stays FAIL however recent the last success; START stays PENDING without being stale', function () {
    expect(operatorStatus({ operationalState: OperationalState.INVALID_QUOTE, lastSuccessfulAttestation: now }, now, 10)).to.deep.equal({ attestationStatus: 'FAIL', trusted: false, stale: false });
    expect(operatorStatus({ operationalState: OperationalState.START, lastSuccessfulAttestation: 0 }, now, 10)).to.deep.equal({ attestationStatus: 'PENDING', trusted: false, stale: false });
  });
});

describe('operator decision: stalenessProblem fails closed on a time that is not a number', function () {
  const now = 1_796_000_000;
  const wording = { field: 'last_seen', event: 'last liveness answer', verdict: 'stale alive' };

  it('passes a fresh time on both clocks, as a reference', function () {
    expect(stalenessProblem(now - 10, 60, { now, verifierNow: now }, wording)).to.equal(undefined);
  });

  it('names a problem for a non-finite time, bound, own clock or verifier clock', function () {
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      expect(stalenessProblem(bad, 60, { now, verifierNow: now }, wording), `at ${bad}`).to.be.a('string');
      expect(stalenessProblem(now - 10, bad, { now, verifierNow: now }, wording), `bound ${bad}`).to.be.a('string');
      expect(stalenessProblem(now - 10, 60, { now: bad, verifierNow: now }, wording), `now ${bad}`).to.be.a('string');
      expect(stalenessProblem(now - 10, 60, { now, verifierNow: bad }, wording), `verifierNow ${bad}`).to.be.a('string');
    }
    expect(stalenessProblem(Number.NaN, 60, { now }, wording)).to.equal('last_seen is not a finite time (NaN): not trusted');
    expect(stalenessProblem(now - 10, Number.NaN, { now }, wording)).to.equal('the freshness bound is not a finite number of seconds (NaN): not trusted');
  });
});
