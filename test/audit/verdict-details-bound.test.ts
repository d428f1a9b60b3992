import { generateKeyPairSync } from 'node:crypto';
import { expect } from 'chai';
import { initialAgentState } from '../../lib/attestation/agent-state.js';
import type { HistoryRow, StoredFailure } from '../../lib/attestation/history-row.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { formatAuditLine, MAX_AUDIT_LINE_BYTES } from '../../lib/audit/audit-export-format.js';
import { AUDIT_GENESIS_HASH, chainAuditEvent, sealAuditRecords, type AuditRecord } from '../../lib/audit/audit-record.js';
import { verifyAuditExport } from '../../lib/audit/verify-audit-export.js';
import { MAX_AUDITED_FAILURES, verdictDetails } from '../../lib/verifier/verdict-audit.js';
import type { RoundWrite } from '../../lib/verifier/round-writer.js';
import { sealedExport } from './helpers/sealed-export.js';

const key = generateKeyPairSync('ed25519');

function failRound(failures: readonly StoredFailure[]): { write: RoundWrite; history: HistoryRow } {
  const history: HistoryRow = { outcome: 'fail', nonce: 'n1', imaMlEntry: 0, imaEntriesReceived: failures.length, failures };
  const write: RoundWrite = { agentId: 'agent-big', verifierId: 'default', owner: 'v1', leaseSeconds: 30, state: { ...initialAgentState(OperationalState.INVALID_QUOTE), attestationCount: 3 }, history };
  return { write, history };
}

function recordOf(details: Record<string, unknown>): AuditRecord {
  const link = chainAuditEvent({ stream: 'agent-big', at: '2026-12-05T18:00:00.000Z', actor: 'verifier:v1', action: 'verdict', agentId: 'agent-big', details }, 1, AUDIT_GENESIS_HASH);
  return sealAuditRecords([link], key.privateKey)[0] as AuditRecord;
}

describe("a verdict's audit details are bounded, so every record fits an export line", () => {
  it('20,000 IMA lines outside the policy: the first failures, a count of the rest, and a genuine export that verifies', () => {
    const failures = Array.from({ length: 20_000 }, (_, i) => ({
      event_id: 'ima.validation.ima-ng.not_in_allowlist',
      severity_label: 'critical',
      context: { message: `File not found in allowlist: /usr/lib/x86_64-linux-gnu/some-library-${i}.so` },
      recoverable: false,
    }));
    const { write, history } = failRound(failures);
    const details = verdictDetails(write, history);
    expect(details['failures']).to.have.length(MAX_AUDITED_FAILURES);
    expect(details['event_ids']).to.have.length(MAX_AUDITED_FAILURES);
    expect(details['failures_omitted']).to.equal(20_000 - MAX_AUDITED_FAILURES);
    expect((details['failures'] as StoredFailure[])[0]).to.deep.equal(failures[0]);
    const text = sealedExport([recordOf(details)], key.privateKey);
    expect(verifyAuditExport(text, key.publicKey)).to.include({ valid: true, records: 1 });
  });

  it('a failure left out is still named by its event id: a PCR or measured boot failure after a padded IMA list shows in the signed record', () => {
    const ima = { event_id: 'ima.validation.ima-ng.not_in_allowlist', severity_label: 'critical', context: { message: 'File not found in allowlist: /tmp/x' }, recoverable: false };
    const boot = { event_id: 'measured_boot.invalid_pcr_4', severity_label: 'emergency', context: { message: 'PCR 4 does not match the boot log' }, recoverable: false };
    const { write, history } = failRound([...Array.from({ length: 150 }, () => ima), boot, ima]);
    const details = verdictDetails(write, history);
    expect(details).to.deep.include({ failures_omitted: 52, omitted_event_ids: ['ima.validation.ima-ng.not_in_allowlist', 'measured_boot.invalid_pcr_4'] });
  });

  it('the worst case (every failure with a huge context of characters JSON escapes) stays under the line bound', () => {
    const hostile = `"\\\u0000é😀`.repeat(50_000);
    const failures = Array.from({ length: 1_000 }, (_, i) => ({ event_id: 'ima.validation.ima-ng.not_in_allowlist', severity_label: 'critical', context: { message: `${i}${hostile}`, nan: Number.NaN }, recoverable: false }));
    const { write, history } = failRound(failures);
    const details = verdictDetails(write, history);
    const first = (details['failures'] as StoredFailure[])[0] as StoredFailure;
    expect(first.context['bytes']).to.equal(Buffer.byteLength(JSON.stringify(failures[0]?.context)));
    expect(first.context['truncated']).to.equal(JSON.stringify(failures[0]?.context).slice(0, 1024));
    const line = formatAuditLine(recordOf(details));
    expect(Buffer.byteLength(line)).to.be.below(MAX_AUDIT_LINE_BYTES / 2);
    expect(verifyAuditExport(sealedExport([recordOf(details)], key.privateKey), key.publicKey).valid).to.equal(true);
  });

  it('the kept start of a long context never ends in half a character (a lone surrogate is no Unicode text)', () => {
    // `{"message":"` is 12 characters: the emoji's two UTF-16 units are the 1,024th and 1,025th.
    const message = `${'a'.repeat(1011)}😀${'b'.repeat(5000)}`;
    const { write, history } = failRound([{ event_id: 'ima.validation.ima-ng.not_in_allowlist', severity_label: 'critical', context: { message }, recoverable: false }]);
    const truncated = ((verdictDetails(write, history)['failures'] as StoredFailure[])[0] as StoredFailure).context['truncated'] as string;
    expect(truncated).to.equal(`{"message":"${'a'.repeat(1011)}`);
    expect(() => encodeURIComponent(truncated)).not.to.throw();
  });

  it('a round with few, small failures keeps them all, through JSON (NaN becomes null), and no count', () => {
    const failures = [{ event_id: 'ima.validation.ima-ng.not_in_allowlist', severity_label: 'emergency', context: { message: 'File not found in allowlist: /tmp/x', nan: Number.NaN }, recoverable: false }];
    const { write, history } = failRound(failures);
    const details = verdictDetails(write, history);
    expect(details).to.deep.include({ event_ids: ['ima.validation.ima-ng.not_in_allowlist'], failures: [{ ...failures[0], context: { message: 'File not found in allowlist: /tmp/x', nan: null } }] });
    expect(details).not.to.have.property('failures_omitted');
  });
});
