import { expect } from 'chai';
import { IronlimeError } from '../../interfaces/errors.js';
import { FailureComponent, failureEvent, internalVerifierFailure } from '../../lib/attestation/internal/failure.js';
import {
  compileSeverityPolicy,
  DEFAULT_SEVERITY_LABELS,
  labelFailures,
  mostSevere,
  severityLevelOf,
} from '../../lib/attestation/severity.js';

describe('attestation severity policy (keylime failure.py)', () => {
  it('default policy gives every event the maximum label "emergency" (level 6)', () => {
    const policy = compileSeverityPolicy();
    expect(policy.labels).to.deep.equal(DEFAULT_SEVERITY_LABELS);
    expect(severityLevelOf(policy, 'ima.validation.ima-ng.not_in_allowlist', true)).to.equal(6);
    expect(policy.labels[policy.maxLevel]).to.equal('emergency');
  });

  it('first matching rule wins, regexes match the whole event id, unmatched ids get the maximum', () => {
    const policy = compileSeverityPolicy({
      policy: [
        { event_id: 'ima\\..*', severity_label: 'warning' },
        { event_id: 'ima.validation.ima-ng.not_in_allowlist', severity_label: 'info' },
        { event_id: 'pcr_validation.invalid_pcr_1|pcr_validation.invalid_pcr_2', severity_label: 'notice' },
      ],
    });
    expect(severityLevelOf(policy, 'ima.validation.ima-ng.not_in_allowlist', true)).to.equal(2);
    expect(severityLevelOf(policy, 'pcr_validation.invalid_pcr_2', true)).to.equal(1);
    // fullmatch: the alternation stays inside the anchors, so a longer id does not match
    expect(severityLevelOf(policy, 'pcr_validation.invalid_pcr_23', true)).to.equal(6);
    expect(severityLevelOf(policy, 'xima.pcr_mismatch', true)).to.equal(6);
  });

  it('irrecoverable events are forced to the maximum label', () => {
    const policy = compileSeverityPolicy({ policy: [{ event_id: '.*', severity_label: 'info' }] });
    const [quote, pcr] = labelFailures(policy, [
      failureEvent(FailureComponent.QUOTE_VALIDATION, 'quote_validation', 'bad signature', false),
      failureEvent(FailureComponent.PCR_VALIDATION, 'invalid_pcr_0', { got: '00' }, true),
    ]);
    expect(quote).to.include({ eventId: 'qoute_validation.quote_validation', severityLabel: 'emergency', severityLevel: 6 });
    expect(quote?.context).to.deep.equal({ message: 'bad signature' });
    expect(pcr).to.include({ eventId: 'pcr_validation.invalid_pcr_0', severityLabel: 'info', severityLevel: 0 });
  });

  it('mostSevere returns the first event with the highest level', () => {
    const policy = compileSeverityPolicy({
      labels: ['low', 'high'],
      policy: [
        { event_id: 'ima.pcr_mismatch', severity_label: 'high' },
        { event_id: '.*', severity_label: 'low' },
      ],
    });
    const labelled = labelFailures(policy, [
      failureEvent(FailureComponent.PCR_VALIDATION, 'invalid_pcr_1', {}, true),
      failureEvent(FailureComponent.IMA, 'pcr_mismatch', {}, true),
      internalVerifierFailure('not_reachable', 'agent was not reachable from verifier'),
    ]);
    expect(mostSevere(labelled)?.eventId).to.equal('ima.pcr_mismatch');
    expect(labelled[2]?.eventId).to.equal('internal.verifier.not_reachable');
    expect(mostSevere([])).to.equal(undefined);
  });

  it('rejects unknown labels, duplicate labels and bad regexes at startup', () => {
    const attempts: [() => unknown, RegExp][] = [
      [() => compileSeverityPolicy({ policy: [{ event_id: '.*', severity_label: 'fatal' }] }), /severity_policy\[0\]\.severity_label: unknown label "fatal"/],
      [() => compileSeverityPolicy({ labels: ['a', 'a'] }), /severity_labels: labels must be unique/],
      [() => compileSeverityPolicy({ labels: [] }), /severity_labels: must name at least one label/],
      [() => compileSeverityPolicy({ policy: [{ event_id: 'ima.(', severity_label: 'info' }] }), /severity_policy\[0\]\.event_id: not a valid regular expression/],
    ];
    for (const [attempt, message] of attempts) {
      expect(attempt).to.throw(IronlimeError, message).with.property('code', 'ERR_INVALID_CONFIG');
    }
  });
});
