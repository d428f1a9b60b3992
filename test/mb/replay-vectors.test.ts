import { expect } from 'chai';
import { readdirSync } from 'node:fs';
import { vectorPath } from '../helpers/paths.js';
import { parseEventLog } from '../../lib/mb/parse-event-log.js';
import { verifyReplay } from '../../lib/mb/verify-replay.js';
import { goTpmToolsLogs, loadLog, replayJson, vectorJson, windowsVector, type PcrJson } from './mb-vectors.js';

/** Every replayed PCR the expectation lists equals the expected value (and the bank exists). */
function expectPcrs(actual: PcrJson, expected: PcrJson): void {
  for (const [bank, pcrs] of Object.entries(expected)) {
    for (const [index, value] of Object.entries(pcrs)) {
      expect(actual[bank]?.[index], `${bank} PCR ${index}`).to.equal(value.toLowerCase());
    }
  }
}

describe('mb replay: every replayable vector gives its expected PCR banks', () => {
  describe('go-tpm-tools eventlogs (server/eventlog_test.go values)', () => {
    const logs = goTpmToolsLogs();
    it('covers all 14 logs', () => {
      expect(Object.keys(logs)).to.have.length(14);
    });
    for (const [file, expected] of Object.entries(logs)) {
      it(`${file}: ${expected.events_parsed_by_us} events, replay equals every expected bank`, () => {
        const log = loadLog('go-tpm-tools', 'eventlogs', file);
        expect(log.events).to.have.length(expected.events_parsed_by_us);
        expectPcrs(replayJson(log), expected.expected_pcrs);
        const check = verifyReplay(log, expected.expected_pcrs);
        expect(check.ok).to.equal(true);
        expect(check.mismatched).to.deep.equal([]);
        expect(check.quirksApplied).to.deep.equal([]);
      });
    }
    it('debian-10.bin: a SHA-1 bank whose PCR 0 is the 4-byte value 00000000 does not verify (TestParseMachineStateFail)', () => {
      const log = loadLog('go-tpm-tools', 'eventlogs', 'debian-10.bin');
      const expected = logs['debian-10.bin']?.expected_pcrs.sha1 ?? {};
      const check = verifyReplay(log, { sha1: { ...expected, '0': '00000000' } });
      expect(check.ok).to.equal(false);
      expect(check.mismatched.map((m) => m.pcrIndex)).to.deep.equal([0]);
      expect(check.failures[0]?.eventId).to.equal('measured_boot.invalid_pcr_0');
      expect(check.verifiedLog?.pcrs).to.not.include(0);
    });
  });

  describe('tpm2-tools event-*.bin (golden YAML "pcrs")', () => {
    const summary = vectorJson<{ files: Record<string, { expected_pcrs?: PcrJson; events_parsed_independently: number }> }>(
      'tpm2-tools',
      'EXPECTED_SUMMARY.json',
    ).files;
    for (const [file, expected] of Object.entries(summary)) {
      it(`${file}: ${expected.events_parsed_independently} event(s)${expected.expected_pcrs === undefined ? '' : ', YAML pcrs'}`, () => {
        const log = loadLog('tpm2-tools', file);
        expect(log.events).to.have.length(expected.events_parsed_independently);
        const replay = replayJson(log);
        expectPcrs(replay, expected.expected_pcrs ?? {});
        for (const [bank, pcrs] of Object.entries(expected.expected_pcrs ?? {})) {
          expect(Object.keys(replay[bank] ?? {}), `${bank} PCRs with events`).to.deep.equal(Object.keys(pcrs));
        }
      });
    }
    it('specid-vendordata.bin parses through the named quirk and keeps its vendor info deadbeef', () => {
      const log = loadLog('tpm2-tools', 'specid-vendordata.bin');
      expect(log.quirksApplied).to.deep.equal(['spec-id-vendor-info-outside-event']);
      expect(Buffer.from(log.specId?.vendorInfo ?? []).toString('hex')).to.equal('deadbeef');
      expect(log.algorithms.map((a) => a.name)).to.deep.equal(['sha1', 'sha256']);
      expect(replayJson(log)).to.deep.equal({ sha1: {}, sha256: {} });
    });
  });

  describe('keylime measured_boot logs', () => {
    const expected = vectorJson<Record<string, { pcrs?: PcrJson; events_including_specid?: number; startup_locality?: number[] }>>(
      'keylime',
      'measured_boot',
      'measured_boot_independent_replay.json',
    );
    for (const file of ['binary_bios_measurements', 'binary_bios_measurements-secureboot', 'mb_log.b64']) {
      it(`${file}: replay equals the independent replay`, () => {
        const log = loadLog('keylime', 'measured_boot', file);
        const e = expected[file] ?? {};
        expect(log.events).to.have.length(e.events_including_specid ?? -1);
        expect(log.startupLocality).to.equal(e.startup_locality?.[0] ?? null);
        expectPcrs(replayJson(log), e.pcrs ?? {});
      });
    }
    it('binary_bios_measurements: PCR 0 starts at locality 3; tpm2_eventlog 5.4\'s value (locality ignored) does not verify', () => {
      const log = loadLog('keylime', 'measured_boot', 'binary_bios_measurements');
      expect(log.startupLocality).to.equal(3);
      const pcr0 = '0ee9a7feba8f4172f1a7451594aa5731665a4d353ac61814042ce107a00742f2';
      expect(replayJson(log).sha256?.['0']).to.equal(pcr0);
      const tpm2Tools54 = '1877eacbf0290c67521de489ae1ca5d04de12150e522f472f3fb3daeb35e8e43';
      const check = verifyReplay(log, { sha256: { '0': tpm2Tools54 } });
      expect(check.mismatched).to.deep.equal([{ bank: 'sha256', pcrIndex: 0, quoted: tpm2Tools54, replayed: pcr0 }]);
    });
    it('binary_bios_measurements-bogus and -empty are refused with EventLogParseError', () => {
      for (const file of ['binary_bios_measurements-bogus', 'binary_bios_measurements-empty']) {
        expect(() => loadLog('keylime', 'measured_boot', file), file).to.throw().with.property('code', 'ERR_EVENT_LOG_PARSE');
      }
      expect(() => parseEventLog(new Uint8Array(0))).to.throw('the event log is empty');
    });
  });

  it('rust-keylime uefi_log.bin: 124 events, replay equals EXPECTED.json', () => {
    const expected = vectorJson<Record<string, { independent: { pcrs: PcrJson; events_including_specid: number } }>>('rust-keylime', 'EXPECTED.json');
    const log = loadLog('rust-keylime', 'uefi_log.bin');
    const want = expected['uefi_log.bin']?.independent;
    expect(log.events).to.have.length(want?.events_including_specid ?? -1);
    expectPcrs(replayJson(log), want?.pcrs ?? {});
  });

  describe('go-attestation logs', () => {
    const files = vectorJson<{ files: Record<string, { expected_pcrs?: PcrJson }> }>('go-attestation', 'EXPECTED_FROM_TESTS.json').files;
    for (const file of ['sb_cert_eventlog', 'option_rom_eventlog']) {
      it(`${file}: Verify against the test's PCRs succeeds`, () => {
        const check = verifyReplay(loadLog('go-attestation', file), files[file]?.expected_pcrs ?? {});
        expect(check.ok).to.equal(true);
        expect(check.mismatched).to.deep.equal([]);
        expect(check.quirksApplied).to.deep.equal([]);
      });
    }
    it('option_rom_eventlog keeps its Windows PCR -1 EV_NO_ACTION event', () => {
      const log = loadLog('go-attestation', 'option_rom_eventlog');
      expect(log.events).to.have.length(61);
      expect(log.events[60]?.pcrIndex).to.equal(0xffffffff);
      expect(log.events[60]?.untrustedTypeName).to.equal('EV_NO_ACTION');
    });
    it('the Windows SHA1-format log inside windows_gcp_shielded_vm.json replays to its 24 quoted PCRs', () => {
      const { raw, pcrs } = windowsVector();
      const log = parseEventLog(raw);
      expect(log.format).to.equal('sha1');
      expect(log.events).to.have.length(21);
      const check = verifyReplay(log, pcrs);
      expect(check.ok).to.equal(true);
      expect(check.matched.map((m) => m.pcrIndex)).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15]);
    });
    it('crypto_agile_eventlog, short_no_action_eventlog, ubuntu and coreos logs parse', () => {
      expect(loadLog('go-attestation', 'crypto_agile_eventlog').events).to.have.length(27);
      const short = loadLog('go-attestation', 'short_no_action_eventlog');
      expect(short.format).to.equal('sha1');
      expect(short.events).to.have.length(1);
      expect(short.startupLocality).to.equal(3);
      expect(loadLog('go-attestation', 'ubuntu_2104_shielded_vm_no_secure_boot_eventlog').events).to.have.length(106);
      expect(loadLog('go-attestation', 'coreos_36_shielded_vm_no_secure_boot_eventlog').events).to.have.length(76);
    });
  });

  describe('GCE attestations: event_log.bin vs the pcrs_*.json carried in the attestation', () => {
    for (const name of readdirSync(vectorPath('go-tpm-tools', 'attestations')).filter((n) => n.endsWith('.extracted'))) {
      it(`${name}: sha1, sha256 and sha384 banks all verify`, () => {
        const dir = ['go-tpm-tools', 'attestations', name];
        const quoted: PcrJson = {};
        for (const bank of ['sha1', 'sha256', 'sha384']) {
          quoted[bank] = vectorJson<Record<string, string>>(...dir, `pcrs_${bank}.json`);
        }
        const check = verifyReplay(loadLog(...dir, 'event_log.bin'), quoted);
        expect(check.ok).to.equal(true);
        expect(check.matched).to.have.length(3 * 15);
        expect(check.verifiedLog?.bank.name).to.equal('sha256');
      });
    }
  });
});
