import { generateKeyPairSync } from 'node:crypto';
import { expect } from 'chai';
import { AUDIT_GENESIS_HASH, chainAuditEvent, sealAuditRecords } from '../../lib/audit/audit-record.js';
import { verifyAuditExport } from '../../lib/audit/verify-audit-export.js';
import { auditVerifyReport } from '../../lib/cli/audit-verify-report.js';
import { sealedExport } from './helpers/sealed-export.js';

const key = generateKeyPairSync('ed25519');
const forger = generateKeyPairSync('ed25519');

describe('ironlime audit verify: what it prints', () => {
  it('a stream name from the file is printed with its control characters escaped: no escape sequence redraws the terminal over BROKEN', () => {
    const stream = '\u001b[1A\u001b[2Kagent-a: ok\u0085';
    const link = chainAuditEvent({ stream, at: '2026-12-05T18:00:00.000Z', actor: 'verifier:v1', action: 'verdict', agentId: stream, details: { outcome: 'PASS' } }, 1, AUDIT_GENESIS_HASH);
    const forged = sealedExport(sealAuditRecords([link], forger.privateKey), forger.privateKey);
    const report = auditVerifyReport(verifyAuditExport(forged, key.publicKey));
    expect(report).not.to.match(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/);
    expect(report.split('\n')[0]).to.equal('\\u001b[1A\\u001b[2Kagent-a: ok\\u0085: BROKEN at line 1: record 1 (seq 1): its hash (alone or through its batch path) is not signed by the audit key [bad-signature]');
  });
});
