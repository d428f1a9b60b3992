import { expect } from 'chai';
import type { ParsedEventLog } from '../../lib/mb/event-log.js';
import { EV_EFI_ACTION } from '../../lib/mb/internal/event-types.js';
import { EBS_EVENTS_MISSING, PARSE_QUIRKS, REPLAY_QUIRKS, SPEC_ID_VENDOR_INFO_OUTSIDE_EVENT } from '../../lib/mb/internal/quirks.js';
import { verifyReplay } from '../../lib/mb/verify-replay.js';
import { loadLog, replayJson, vectorBytes, vectorJson, type PcrJson } from './mb-vectors.js';

const EBS = vectorJson<{ files: Record<string, { expected_pcrs: PcrJson }> }>('go-attestation', 'EXPECTED_FROM_TESTS.json')
  .files.ebs_event_missing_eventlog?.expected_pcrs ?? {};

describe('mb verifyReplay and quirks', () => {
  it('lists each quirk as {id, affects, apply} with a source', () => {
    expect(REPLAY_QUIRKS.map((q) => [q.id, q.affects])).to.deep.equal([['ebs-events-missing', [5]]]);
    expect(PARSE_QUIRKS.map((q) => [q.id, q.affects])).to.deep.equal([['spec-id-vendor-info-outside-event', 'framing']]);
    for (const quirk of [...REPLAY_QUIRKS, ...PARSE_QUIRKS]) {
      expect(quirk.source).to.match(/^https:\/\//);
    }
  });

  describe('ebs-events-missing (go-attestation TestEBSVerifyWorkaround)', () => {
    const log = loadLog('go-attestation', 'ebs_event_missing_eventlog');

    it('the strict replay of PCR 5 does not match the TPM (e5781a2f… vs 31245808…)', () => {
      expect(replayJson(log).sha1?.['5']).to.equal('e5781a2fd49c23a33b16bf0ba5f10efa1aa5d43c');
    });

    it('verifies PCR 5 only after appending the two ExitBootServices actions, and says so', () => {
      const check = verifyReplay(log, EBS);
      expect(check.ok).to.equal(true);
      expect(check.quirksApplied).to.deep.equal(['ebs-events-missing']);
      expect(check.matched).to.deep.equal([
        { bank: 'sha1', pcrIndex: 5, quoted: '31245808d6d35849bc394f6343f2b3ff908ed5e3', replayed: '31245808d6d35849bc394f6343f2b3ff908ed5e3' },
      ]);
      expect(check.unverifiable).to.deep.equal([{ bank: 'sha256', reason: 'the log has no sha256 digests' }]);
      const added = check.verifiedLog?.events.filter((e) => e.sequence >= log.events.length) ?? [];
      expect(added.map((e) => Buffer.from(e.untrustedData).toString())).to.deep.equal([
        'Exit Boot Services Invocation',
        'Exit Boot Services Returned with Success',
      ]);
      expect(added.every((e) => e.verifiedContent !== null)).to.equal(true);
    });

    it('is not kept when another PCR still mismatches', () => {
      const check = verifyReplay(log, { sha1: { ...EBS.sha1, '0': '00'.repeat(20) } });
      expect(check.ok).to.equal(false);
      expect(check.quirksApplied).to.deep.equal([]);
      expect(check.failures.map((f) => f.eventId)).to.deep.equal(['measured_boot.invalid_pcr_0', 'measured_boot.invalid_pcr_5']);
    });

    it('does not apply to a log that already holds the ExitBootServices events', () => {
      const logged = loadLog('go-tpm-tools', 'eventlogs', 'ubuntu-2104-no-secure-boot.bin');
      expect(logged.events.some((e) => e.pcrIndex === 5 && e.untrustedType === EV_EFI_ACTION)).to.equal(true);
      expect(EBS_EVENTS_MISSING.apply(logged)).to.equal(null);
      const check = verifyReplay(logged, { sha256: { '5': '00'.repeat(32) } });
      expect(check.quirksApplied).to.deep.equal([]);
      expect(check.mismatched.map((m) => m.pcrIndex)).to.deep.equal([5]);
    });

    it('never turns a wrong PCR 5 into a match', () => {
      const check = verifyReplay(log, { sha1: { '5': 'ff'.repeat(20) } });
      expect(check.ok).to.equal(false);
      expect(check.quirksApplied).to.deep.equal([]);
      expect(check.verifiedLog).to.equal(null);
    });
  });

  describe('spec-id-vendor-info-outside-event (tpm2-tools specid-vendordata.bin)', () => {
    it('applies only to a Spec ID event whose declared size stops right before its vendor info', () => {
      const bytes = vectorBytes('tpm2-tools', 'specid-vendordata.bin');
      const patched = SPEC_ID_VENDOR_INFO_OUTSIDE_EVENT.apply(bytes);
      expect(patched).to.not.equal(null);
      expect(new DataView((patched as Uint8Array).buffer).getUint32(28, true)).to.equal(37 + 4);
      expect(SPEC_ID_VENDOR_INFO_OUTSIDE_EVENT.apply(vectorBytes('tpm2-tools', 'event.bin'))).to.equal(null);
      expect(SPEC_ID_VENDOR_INFO_OUTSIDE_EVENT.apply(bytes.subarray(0, 71))).to.equal(null);
    });

    it('is not used for logs that parse strictly', () => {
      expect(loadLog('tpm2-tools', 'event.bin').quirksApplied).to.deep.equal([]);
    });
  });

  describe('quoted PCR values', () => {
    const log: ParsedEventLog = loadLog('tpm2-tools', 'event.bin');

    it('compares a quoted PCR the log never extends with its initial value', () => {
      const check = verifyReplay(log, { sha256: { '3': '00'.repeat(32), '0': replayJson(log).sha256?.['0'] ?? '' } });
      expect(check.ok).to.equal(true);
      expect(check.verifiedLog?.pcrs).to.deep.equal([0, 3]);
    });

    it('ignores quoted PCRs outside the measured-boot set (PCR 10 is IMA\'s)', () => {
      const check = verifyReplay(log, { sha256: { '10': 'ab'.repeat(32) } });
      expect(check.matched).to.deep.equal([]);
      expect(check.mismatched).to.deep.equal([]);
      expect(check.ok).to.equal(false);
    });

    it('accepts 0x-prefixed and upper-case hex and byte arrays', () => {
      const pcr0 = replayJson(log).sha256?.['0'] ?? '';
      expect(verifyReplay(log, { sha256: { '0': `0x${pcr0.toUpperCase()}` } }).ok).to.equal(true);
      expect(verifyReplay(log, { sha256: { '0': new Uint8Array(Buffer.from(pcr0, 'hex')) } }).ok).to.equal(true);
    });

    it('refuses an unknown bank, a bad PCR index and non-hex digests', () => {
      const cases: [Record<string, Record<string, string>>, string][] = [
        [{ md5: { '0': '00' } }, 'quotedPcrs.md5: unknown PCR bank'],
        [{ sha256: { '24': '00' } }, 'quotedPcrs.sha256.24: PCR index must be an integer from 0 to 23'],
        [{ sha256: { x: '00' } }, 'quotedPcrs.sha256.x: PCR index must be an integer from 0 to 23'],
        [{ sha256: { '0': 'zz' } }, 'quotedPcrs.sha256.0: digest must be a hex string'],
        [{ sha256: { '0': 'abc' } }, 'quotedPcrs.sha256.0: digest must be a hex string'],
      ];
      for (const [quoted, message] of cases) {
        expect(() => verifyReplay(log, quoted)).to.throw(message).with.property('code', 'ERR_INVALID_PARAMETER_VALUE');
      }
    });
  });
});
