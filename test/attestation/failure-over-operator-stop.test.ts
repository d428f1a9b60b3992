import { expect } from 'chai';
import type { HistoryRow } from '../../lib/attestation/history-row.js';
import { recordedOverOperatorStop } from '../../lib/attestation/failure-over-operator-stop.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';

const row = (outcome: HistoryRow['outcome']): HistoryRow => ({
  outcome,
  nonce: null,
  imaMlEntry: null,
  imaEntriesReceived: null,
  failures: outcome === 'fail' ? [{ event_id: 'ima.validation.ima-ng.not_in_allowlist', severity_label: 'emergency', context: {}, recoverable: false }] : [],
});

describe('a verdict recorded over an operator stop (lib/attestation/failure-over-operator-stop.ts)', function () {
  it('a FAIL into FAILED or INVALID_QUOTE is recorded', function () {
    expect(recordedOverOperatorStop({ operationalState: OperationalState.FAILED }, row('fail'))).to.equal(true);
    expect(recordedOverOperatorStop({ operationalState: OperationalState.INVALID_QUOTE }, row('fail'))).to.equal(true);
  });

  it('nor is a FAIL decided from a row an operator had already stopped or deleted (a push agent pushing after its stop)', function () {
    for (const from of [OperationalState.TENANT_FAILED, OperationalState.TERMINATED]) {
      expect(recordedOverOperatorStop({ operationalState: OperationalState.INVALID_QUOTE }, row('fail'), from), `from ${from}`).to.equal(false);
    }
    expect(recordedOverOperatorStop({ operationalState: OperationalState.INVALID_QUOTE }, row('fail'), OperationalState.GET_QUOTE)).to.equal(true);
  });

  it('a pass, a retry, nothing judged, or a fail row into any other state is not', function () {
    const cases: [OperationalState, HistoryRow | undefined][] = [
      [OperationalState.GET_QUOTE, row('pass')],
      // A failed push agent's later PASS keeps its failed state: not a failure to record.
      [OperationalState.INVALID_QUOTE, row('pass')],
      [OperationalState.GET_QUOTE_RETRY, row('retry')],
      [OperationalState.FAILED, undefined],
      [OperationalState.GET_QUOTE, row('fail')],
      [OperationalState.TENANT_FAILED, row('fail')],
      [OperationalState.TERMINATED, row('fail')],
    ];
    for (const [state, history] of cases) {
      expect(recordedOverOperatorStop({ operationalState: state }, history), `${state} ${history?.outcome ?? 'none'}`).to.equal(false);
    }
  });
});
