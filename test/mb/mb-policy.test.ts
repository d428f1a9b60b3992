import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { vectorPath } from '../helpers/paths.js';
import { checkMeasuredBoot, checkMeasuredBootLog } from '../../lib/mb/check-measured-boot.js';
import { createRefstate } from '../../lib/mb/create-refstate.js';
import { evaluateMbPolicy } from '../../lib/mb/evaluate-mb-policy.js';
import type { ParsedEventLog } from '../../lib/mb/event-log.js';
import type { MbFailure } from '../../lib/mb/mb-failure.js';
import type { MbRefstate, RefstateKernel } from '../../lib/mb/mb-refstate.js';
import { parseMbRefstate } from '../../lib/mb/parse-refstate.js';
import { verifyReplay } from '../../lib/mb/verify-replay.js';
import { loadLog, replayJson, selfQuote, vectorBytes } from './mb-vectors.js';

const OTHER = `0x${'ab'.repeat(32)}`;

/** Evaluates `log` (quoted by its own replay, as the TPM would) against `refstate`. */
function evaluate(log: ParsedEventLog, refstate: MbRefstate): MbFailure[] {
  const check = checkMeasuredBootLog(log, selfQuote(log), parseMbRefstate(JSON.stringify(refstate)));
  return [...check.failures];
}

function components(failures: readonly MbFailure[]): string[] {
  return failures.map((f) => String(f.context.component));
}

function withKernel(refstate: MbRefstate, change: Partial<RefstateKernel>): MbRefstate {
  const [kernel] = refstate.kernels as [RefstateKernel];
  return { ...refstate, kernels: [{ ...kernel, ...change }] };
}

describe('mb policy: refstate made from a log, evaluated against logs', () => {
  const secureLog = loadLog('keylime', 'measured_boot', 'mb_log.b64');
  const secureRef = createRefstate(secureLog);
  const plainLog = loadLog('keylime', 'measured_boot', 'binary_bios_measurements');
  const plainRef = createRefstate(plainLog, { withoutSecureBoot: true });

  it('every log that yields a refstate passes against it', () => {
    const logs: string[][] = [
      ['keylime', 'measured_boot', 'mb_log.b64'],
      ['keylime', 'measured_boot', 'binary_bios_measurements'],
      ['keylime', 'measured_boot', 'binary_bios_measurements-secureboot'],
      ['rust-keylime', 'uefi_log.bin'],
      ['tpm2-tools', 'event-bootorder.bin'],
      ['tpm2-tools', 'event-moklisttrusted.bin'],
      ['go-tpm-tools', 'eventlogs', 'ubuntu-1804-amd-sev.bin'],
      ['go-tpm-tools', 'eventlogs', 'ubuntu-2104-no-secure-boot.bin'],
      ['go-tpm-tools', 'eventlogs', 'ubuntu-2404-amd-sevsnp.bin'],
      ['go-tpm-tools', 'eventlogs', 'cos-101-amd-sev.bin'],
    ];
    for (const parts of logs) {
      const log = loadLog(...parts);
      expect(evaluate(log, createRefstate(log, { withoutSecureBoot: true })), parts.join('/')).to.deep.equal([]);
    }
  });

  it('records what Keylime\'s create_mb_policy records', () => {
    expect(secureRef.has_secureboot).to.equal(true);
    expect(secureRef.scrtm_and_bios[0]?.scrtm).to.deep.equal({ sha256: '0x96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7' });
    expect(secureRef.kernels[0]).to.include({
      shim_authcode_sha256: '0xcb994b400590b66cbf55fc663555caf0d4f1ce267464d0452c2361e05ee1cd50',
      grub_authcode_sha256: '0x8a4af74576143e8ddfcfd46646b2734f32dc57cea4feaadd00f245625c3933a2',
      kernel_authcode_sha256: '0xc6ffd33076d66d41be67125c7614c3c9ff56b4107194cc2d3a0491dfa069445b',
    });
    expect(secureRef.kernels[0]?.kernel_cmdline).to.equal(
      '\\(hd0,gpt2\\)/vmlinuz\\-5\\.14\\.0\\-183\\.el9\\.x86_64\\ root=/dev/mapper/cs\\-root\\ ro\\ crashkernel=1G\\-4G:192M,4G\\-64G:256M,64G\\-:512M\\ resume=/dev/mapper/cs\\-swap\\ rd\\.lvm\\.lv=cs/root\\ rd\\.lvm\\.lv=cs/swap\\ rhgb\\ quiet',
    );
    expect([secureRef.pk.length, secureRef.kek.length, secureRef.db.length, secureRef.dbx.length]).to.deep.equal([1, 2, 2, 1]);
    expect(plainRef.has_secureboot).to.equal(false);
    expect(plainRef.kernels[0]).to.have.property('vmlinuz_plain_sha256').that.matches(/^0x[0-9a-f]{64}$/);
    expect(plainRef.firmware_apps).to.have.length(1);
  });

  describe('a refstate that differs from the log fails, naming the component with expected and actual', () => {
    const cases: [string, MbRefstate, string, unknown, unknown][] = [
      ['shim digest', withKernel(secureRef, { shim_authcode_sha256: OTHER }), 'kernels[0].shim_authcode_sha256', OTHER, secureRef.kernels[0]?.shim_authcode_sha256],
      ['GRUB digest', withKernel(secureRef, { grub_authcode_sha256: OTHER }), 'kernels[0].grub_authcode_sha256', OTHER, secureRef.kernels[0]?.grub_authcode_sha256],
      ['kernel digest', withKernel(secureRef, { kernel_authcode_sha256: OTHER }), 'kernels[0].kernel_authcode_sha256', OTHER, secureRef.kernels[0]?.kernel_authcode_sha256],
      ['initrd digest', withKernel(secureRef, { initrd_plain_sha256: OTHER }), 'kernels[0].initrd_plain_sha256', OTHER, secureRef.kernels[0]?.initrd_plain_sha256],
      ['vmlinuz digest', withKernel(plainRef, { vmlinuz_plain_sha256: OTHER }), 'kernels[0].vmlinuz_plain_sha256', OTHER, plainRef.kernels[0]?.vmlinuz_plain_sha256],
      ['kernel command line', withKernel(secureRef, { kernel_cmdline: '.* single' }), 'kernels[0].kernel_cmdline', '.* single', '(hd0,gpt2)/vmlinuz-5.14.0-183.el9.x86_64 root=/dev/mapper/cs-root ro crashkernel=1G-4G:192M,4G-64G:256M,64G-:512M resume=/dev/mapper/cs-swap rd.lvm.lv=cs/root rd.lvm.lv=cs/swap rhgb quiet'],
      ['MokList digest', { ...secureRef, mokdig: [{ sha256: OTHER }] }, 'mokdig', [{ sha256: OTHER }], { sha256: secureRef.mokdig[0]?.sha256 }],
      ['S-CRTM version', { ...secureRef, scrtm_and_bios: [{ ...secureRef.scrtm_and_bios[0], scrtm: { sha256: OTHER }, platform_firmware: secureRef.scrtm_and_bios[0]?.platform_firmware ?? [] }] }, 'scrtm_and_bios[0].scrtm[0]', OTHER, secureRef.scrtm_and_bios[0]?.scrtm?.sha256],
    ];
    for (const [what, refstate, component, expected, actual] of cases) {
      it(what, () => {
        const failures = evaluate(refstate === plainRef || refstate.has_secureboot === false ? plainLog : secureLog, refstate);
        expect(failures).to.not.be.empty;
        expect(components(failures).every((c) => c === component), components(failures).join()).to.equal(true);
        expect(failures[0]?.eventId).to.equal('measured_boot.policy_example');
        expect(failures[0]?.context).to.include({ policy: 'example', component });
        expect(failures[0]?.context.expected).to.deep.equal(expected);
        expect(failures[0]?.context.actual).to.deep.equal(actual);
        expect(String(failures[0]?.context.context)).to.match(new RegExp(`^Boot event log does not match the measured boot refstate: ${component.replace(/[[\].]/g, '\\$&')}: `));
      });
    }

    it('Secure Boot state', () => {
      const failures = evaluate(secureLog, { ...plainRef, has_secureboot: false, kernels: plainRef.kernels });
      expect(failures.find((f) => f.context.component === 'secure_boot')?.context).to.include({
        reason: 'Secure Boot is enabled, the refstate expects it disabled',
        expected: false,
        actual: true,
      });
    });

    it('a db key the refstate does not allow', () => {
      const failures = evaluate(secureLog, { ...secureRef, db: secureRef.db.slice(1) });
      expect(components(failures)).to.deep.equal(['db']);
      expect(failures[0]?.context.reason).to.equal('db holds a key the refstate does not allow');
      expect(failures[0]?.context.actual).to.deep.equal(secureRef.db[0]);
    });

    it('a revocation missing from dbx', () => {
      const required = { SignatureOwner: '77fa9abd-0359-4d32-bd60-28f4e78f784b', SignatureData: OTHER };
      const failures = evaluate(secureLog, { ...secureRef, dbx: [...secureRef.dbx, required] });
      expect(components(failures)).to.deep.equal(['dbx']);
      expect(failures[0]?.context.expected).to.deep.equal([required]);
    });

    it('a firmware blob and an option ROM that are not in the refstate', () => {
      const firmware = { ...plainRef.scrtm_and_bios[0], platform_firmware: plainRef.scrtm_and_bios[0]?.platform_firmware.slice(1) ?? [] };
      const failures = evaluate(plainLog, { ...plainRef, scrtm_and_bios: [firmware], option_roms: [] });
      expect(components(failures)).to.include('scrtm_and_bios[0].platform_firmware');
      expect(failures.find((f) => f.context.component === 'scrtm_and_bios[0].platform_firmware')?.context.reason).to.equal(
        // 6 blobs, 2 ACPI EV_POST_CODEs, the S-CRTM contents and Intel CSME's EV_NONHOST_INFO, whose digest is not of its data.
        'the log has 10 firmware code measurement(s) in PCR 0, the refstate expects 9',
      );
      expect(components(failures).filter((c) => c === 'option_roms')).to.have.length(plainRef.option_roms?.length ?? -1);
    });

    it('one matching entry among several kernels is enough; none matching names the closest', () => {
      const good = secureRef.kernels[0] as RefstateKernel;
      expect(evaluate(secureLog, { ...secureRef, kernels: [{ ...good, shim_authcode_sha256: OTHER }, good] })).to.deep.equal([]);
      const failures = evaluate(secureLog, {
        ...secureRef,
        kernels: [{ ...good, shim_authcode_sha256: OTHER, grub_authcode_sha256: OTHER }, { ...good, initrd_plain_sha256: OTHER }],
      });
      expect(components(failures)).to.deep.equal(['kernels[1].initrd_plain_sha256']);
      expect(failures[0]?.context.reason).to.equal('initrd_plain_sha256 digest differs (no kernels entry matches; closest is kernels[1] of 2)');
    });
  });

  it('another machine\'s log fails against this refstate (GCE Ubuntu 21.04 with and without dbx)', () => {
    const ref = createRefstate(loadLog('go-tpm-tools', 'eventlogs', 'ubuntu-2104-no-secure-boot.bin'), { withoutSecureBoot: true });
    const failures = evaluate(loadLog('go-tpm-tools', 'eventlogs', 'ubuntu-2104-no-dbx.bin'), ref);
    expect(components(failures)).to.include.members(['kernels[0].shim_authcode_sha256', 'dbx', 'kernels[0].kernel_cmdline']);
  });

  describe('only what the quote verifies is evaluated', () => {
    it('a PCR that does not replay gives measured_boot.invalid_pcr_<n> and no policy evaluation', () => {
      const quote = selfQuote(secureLog);
      const check = checkMeasuredBootLog(secureLog, { sha256: { ...quote.sha256, '4': '11'.repeat(32) } }, secureRef);
      expect(check.passed).to.equal(false);
      expect(check.evaluation).to.equal(null);
      expect(check.failures.map((f) => f.eventId)).to.deep.equal(['measured_boot.invalid_pcr_4']);
      expect(check.failures[0]?.context).to.include({ bank: 'sha256', pcr: 4, got: '11'.repeat(32), expected: replayJson(secureLog).sha256?.['4'] });
    });

    it('PCRs the policy needs but the quote lacks give measured_boot.missing_pcrs', () => {
      const { sha256 } = selfQuote(secureLog);
      const quote = Object.fromEntries(Object.entries(sha256 ?? {}).filter(([pcr]) => pcr !== '14' && pcr !== '9'));
      const check = checkMeasuredBootLog(secureLog, { sha256: quote }, secureRef);
      expect(check.failures.map((f) => [f.eventId, f.context.data])).to.deep.equal([['measured_boot.missing_pcrs', [9, 14]]]);
    });

    it('a quote of the SHA-1 bank alone does not vouch for the SHA-256 digests the policy compares', () => {
      const quote = { sha1: Object.fromEntries(Object.entries(replayJson(plainLog).sha1 ?? {})) };
      for (const pcr of ['3', '6']) {
        quote.sha1[pcr] ??= '00'.repeat(20);
      }
      const verified = verifyReplay(plainLog, quote).verifiedLog;
      expect(verified?.bank.name).to.equal('sha1');
      const evaluation = evaluateMbPolicy(verified ?? ((): never => { throw new Error('not verified'); })(), plainRef);
      expect(evaluation.passed).to.equal(false);
      expect(evaluation.findings.map((f) => f.component)).to.deep.equal(['bank']);
    });
  });

  describe('checkMeasuredBoot (the engine entry point)', () => {
    it('takes Keylime\'s base64 mb_measurement_list text', () => {
      const text = readFileSync(vectorPath('keylime', 'measured_boot', 'mb_log.b64'), 'utf8');
      const check = checkMeasuredBoot({ eventLog: text, quotedPcrs: selfQuote(secureLog), refstate: secureRef });
      expect(check.passed).to.equal(true);
      expect(check.failures).to.deep.equal([]);
      expect(check.evaluation?.pcrs).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 14]);
    });

    it('reports undecodable and unparsable logs as Keylime parser events', () => {
      const b64 = checkMeasuredBoot({ eventLog: 'not*base64', quotedPcrs: {}, refstate: secureRef });
      expect(b64.failures.map((f) => f.eventId)).to.deep.equal(['measured_boot.parser.log.base64decode']);
      const bogus = checkMeasuredBoot({ eventLog: vectorBytes('keylime', 'measured_boot', 'binary_bios_measurements-bogus'), quotedPcrs: {} });
      expect(bogus.failures.map((f) => f.eventId)).to.deep.equal(['measured_boot.parser.tpm2_eventlog.error']);
      expect(bogus.failures[0]?.context.message).to.match(/^TCG_PCR_EVENT\[0\]: at offset 8: PCR index \d+ is not in 0\.\.23$/);
      const empty = checkMeasuredBoot({ eventLog: new Uint8Array(0), quotedPcrs: {} });
      expect(empty.failures[0]?.context.message).to.equal('at offset 0: the event log is empty');
    });

    it('without a refstate, checks the replay only', () => {
      const check = checkMeasuredBoot({ eventLog: vectorBytes('keylime', 'measured_boot', 'mb_log.b64'), quotedPcrs: selfQuote(secureLog) });
      expect(check.passed).to.equal(true);
      expect(check.evaluation).to.equal(null);
    });
  });
});
