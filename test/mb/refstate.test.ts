import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { vectorPath } from '../helpers/paths.js';
import { createRefstate, pythonReEscape } from '../../lib/mb/create-refstate.js';
import { compileKernelCmdline } from '../../lib/mb/internal/kernel-cmdline-pattern.js';
import { MbRefstateError } from '../../lib/mb/mb-refstate.js';
import { parseMbRefstate } from '../../lib/mb/parse-refstate.js';
import { loadLog } from './mb-vectors.js';

const EXAMPLE = readFileSync(vectorPath('keylime', 'measured_boot', 'example_reference_state.json'), 'utf8');

function expectRefused(input: unknown, message: string): void {
  expect(() => parseMbRefstate(input)).to.throw(MbRefstateError, `measured-boot refstate: ${message}`).with.property('code', 'ERR_MB_REFSTATE_INVALID');
}

describe('mb refstate', () => {
  describe('parseMbRefstate (Keylime example policy format)', () => {
    it('accepts Keylime\'s example_reference_state.json (has_secureboot defaults to true)', () => {
      const refstate = parseMbRefstate(EXAMPLE);
      expect(refstate.has_secureboot).to.equal(true);
      expect(refstate.kernels).to.have.length(1);
      expect(refstate.kernels[0]?.kernel_authcode_sha256).to.equal('0x8d25a4704a6dd7087ba00f1efc0ef34c75214963973c21c06aff1de0437dbf81');
      expect(refstate.scrtm_and_bios[0]?.platform_firmware).to.have.length(2);
      expect(refstate).to.not.have.property('option_roms');
    });

    it('refuses what is not a refstate, naming the field', () => {
      const example = JSON.parse(EXAMPLE) as Record<string, unknown>;
      const kernel = (example.kernels as Record<string, unknown>[])[0] ?? {};
      expectRefused('{"kernels": [', 'not valid JSON');
      expectRefused('[]', 'refstate must be a JSON object');
      expectRefused({ ...example, kernels: undefined }, 'kernels is missing');
      expectRefused({ ...example, kernels: [] }, 'kernels must not be empty: nothing could match');
      expectRefused({ ...example, dbx: {} }, 'dbx must be a list');
      expectRefused({ ...example, has_secureboot: 'yes' }, 'has_secureboot must be true or false');
      expectRefused({ ...example, mokdig: [{ sha256: '0xABCD' }] }, 'mokdig[0].sha256 must be 0x followed by lowercase hex digits');
      expectRefused({ ...example, mokdig: [{}] }, 'mokdig[0] must name at least one algorithm');
      // Odd-length hex lost its last digit when decoded: a dbx entry or digest with a stray digit matched the one without it.
      expectRefused({ ...example, dbx: [{ SignatureOwner: '77fa9abd-0359-4d32-bd60-28f4e78f784b', SignatureData: '0xabc' }] }, 'dbx[0].SignatureData must be 0x followed by lowercase hex digits, an even number of them (whole bytes)');
      expectRefused({ ...example, pk: [{ SignatureOwner: 'me', SignatureData: '0x00' }] }, 'pk[0].SignatureOwner must be a GUID');
      expectRefused({ ...example, kernels: [{ ...kernel, kernel_authcode_sha256: undefined }] }, 'kernels[0].kernel_authcode_sha256 is missing');
      expectRefused({ ...example, has_secureboot: false }, 'kernels[0].vmlinuz_plain_sha256 is missing (has_secureboot is false)');
      expectRefused({ ...example, kernels: [{ ...kernel, kernel_cmdline: '(unclosed' }] }, 'kernels[0].kernel_cmdline is not a valid regular expression');
      expectRefused({ ...example, scrtm_and_bios: [{ scrtm: { sha256: '0x00' } }] }, 'scrtm_and_bios[0].platform_firmware is missing');
    });
  });

  describe('createRefstate (Keylime test_create_mb_refstate cases)', () => {
    it('binary_bios_measurements: Secure Boot disabled, refused without --without-secureboot, made with it', () => {
      const log = loadLog('keylime', 'measured_boot', 'binary_bios_measurements');
      expect(() => createRefstate(log)).to.throw(MbRefstateError, 'the log has Secure Boot disabled; set withoutSecureBoot');
      expect(createRefstate(log, { withoutSecureBoot: true }).has_secureboot).to.equal(false);
    });

    it('binary_bios_measurements-secureboot: made, also with withoutSecureBoot (which is then ignored)', () => {
      const log = loadLog('keylime', 'measured_boot', 'binary_bios_measurements-secureboot');
      expect(createRefstate(log).has_secureboot).to.equal(true);
      expect(createRefstate(log, { withoutSecureBoot: true })).to.deep.equal(createRefstate(log));
    });

    it('the result is valid input for parseMbRefstate, unchanged by a JSON round trip', () => {
      const made = createRefstate(loadLog('keylime', 'measured_boot', 'mb_log.b64'));
      expect(parseMbRefstate(JSON.stringify(made))).to.deep.equal(made);
    });

    it('refuses logs the example policy could never pass, with the reason', () => {
      const cases: [string[], string][] = [
        [['go-attestation', 'ebs_event_missing_eventlog'], 'the log has no sha256 bank'],
        [['go-tpm-tools', 'eventlogs', 'arch-linux-workstation.bin'], 'Secure Boot state unknown (SecureBoot variable data is 0 byte(s), expected 1)'],
        [['go-tpm-tools', 'eventlogs', 'glinux-alex.bin'], 'the log loads 1 EFI application(s) in PCR 4, expected 2 (shim, GRUB)'],
        [['tpm2-tools', 'event-postcode.bin'], 'the log has no kernel image'],
      ];
      for (const [parts, message] of cases) {
        expect(() => createRefstate(loadLog(...parts), { withoutSecureBoot: true }), parts.join('/')).to.throw(MbRefstateError, message);
      }
    });
  });

  it('pythonReEscape escapes what Python 3.7+ re.escape escapes, and the linear-time engine matches it back', () => {
    const text = 'a-b c.d(e)[f]{g}?*+|^$\\&~#\tz=1,2:3/4\0';
    const escaped = pythonReEscape(text);
    expect(escaped).to.equal('a\\-b\\ c\\.d\\(e\\)\\[f\\]\\{g\\}\\?\\*\\+\\|\\^\\$\\\\\\&\\~\\#\\\tz=1,2:3/4\0');
    expect(compileKernelCmdline(escaped)(`kernel_cmdline: ${text}`)).to.equal(true);
    expect(compileKernelCmdline(escaped)(`kernel_cmdline: ${text}x`)).to.equal(false);
  });
});
