import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { vectorPath } from '../helpers/paths.js';
import { findLogBank, untrustedBootEvents, type BootEvent } from '../../lib/mb/boot-events.js';
import { keyVariableMeasurements } from '../../lib/mb/internal/boot-components.js';
import { efiAppDigests, kernelCommandLines, scrtmVersions, secureBootState } from '../../lib/mb/boot-state.js';
import { EFI_CERT_X509 } from '../../lib/mb/internal/efi-guid.js';
import { decodeEventContent } from '../../lib/mb/internal/event-content.js';
import type { ParsedEventLog } from '../../lib/mb/event-log.js';
import { EV_EFI_VARIABLE_DRIVER_CONFIG, EV_IPL, EV_S_CRTM_VERSION } from '../../lib/mb/internal/event-types.js';
import { parseEventLog } from '../../lib/mb/parse-event-log.js';
import { parseSignatureLists, parseUefiVariable } from '../../lib/mb/internal/uefi-variable.js';
import { goTpmToolsLogs, loadLog, windowsVector } from './mb-vectors.js';

function events(log: ParsedEventLog, bank = 'sha256'): BootEvent[] {
  const alg = findLogBank(log, bank) ?? log.algorithms[0];
  if (alg === undefined) {
    throw new Error('log without banks');
  }
  return untrustedBootEvents(log, alg);
}

describe('mb boot state read from event logs', () => {
  describe('Secure Boot state (SecureBoot variable in PCR 7)', () => {
    it('Windows GCE Shielded VM: enabled (go-attestation TestSecureBoot)', () => {
      const log = parseEventLog(windowsVector().raw);
      const state = secureBootState(events(log, 'sha1'));
      expect(state.enabled).to.equal(true);
      expect(state.event?.dataMatchesDigest).to.equal(true);
    });
    it('Ubuntu 21.04 and CoreOS 36 no-secure-boot logs: disabled', () => {
      for (const file of ['ubuntu_2104_shielded_vm_no_secure_boot_eventlog', 'coreos_36_shielded_vm_no_secure_boot_eventlog']) {
        expect(secureBootState(events(loadLog('go-attestation', file))).enabled, file).to.equal(false);
      }
    });
    it('keylime logs: binary_bios_measurements disabled, -secureboot and mb_log.b64 enabled; rust-keylime disabled', () => {
      expect(secureBootState(events(loadLog('keylime', 'measured_boot', 'binary_bios_measurements'))).enabled).to.equal(false);
      expect(secureBootState(events(loadLog('keylime', 'measured_boot', 'binary_bios_measurements-secureboot'))).enabled).to.equal(true);
      expect(secureBootState(events(loadLog('keylime', 'measured_boot', 'mb_log.b64'))).enabled).to.equal(true);
      expect(secureBootState(events(loadLog('rust-keylime', 'uefi_log.bin'))).enabled).to.equal(false);
    });
    it('arch-linux-workstation.bin: unknown, "SecureBoot data len is 0, expected 1" (go-tpm-tools expected error)', () => {
      const state = secureBootState(events(loadLog('go-tpm-tools', 'eventlogs', 'arch-linux-workstation.bin')));
      expect(state.enabled).to.equal(null);
      expect(state.reason).to.equal('SecureBoot variable data is 0 byte(s), expected 1');
    });
    it('a log without the variable: unknown', () => {
      const state = secureBootState(events(loadLog('tpm2-tools', 'event-uefiaction.bin')));
      expect(state).to.deep.equal({ enabled: null, reason: 'no SecureBoot variable is measured in PCR 7', event: null });
    });
  });

  describe('go-tpm-tools expectations', () => {
    const logs = goTpmToolsLogs();
    for (const [file, expected] of Object.entries(logs)) {
      if (expected.expected_efi_app_digests_note !== undefined) {
        it(`${file}: EFI application digests in order, every bank (TestParseEfiState)`, () => {
          const log = loadLog('go-tpm-tools', 'eventlogs', file);
          for (const [bank, digests] of Object.entries(expected.expected_efi_app_digests ?? {})) {
            expect(efiAppDigests(events(log, bank)), bank).to.deep.equal(digests);
          }
        });
      }
      if (expected.expected_linux_kernel_cmdline !== undefined) {
        it(`${file}: kernel command line (TestParseLinuxKernelState), bound by its digest`, () => {
          const cmdlines = kernelCommandLines(events(loadLog('go-tpm-tools', 'eventlogs', file)));
          // go-tpm-tools keeps GRUB's trailing NUL; Keylime (and `text`) drop one.
          expect(cmdlines.map((c) => c.rawText)).to.deep.equal([expected.expected_linux_kernel_cmdline]);
          expect(cmdlines.map((c) => c.text)).to.deep.equal([expected.expected_linux_kernel_cmdline?.replace(/\0$/, '')]);
          expect(cmdlines[0]?.event.dataMatchesDigest).to.equal(true);
        });
      }
    }
    it('gdc-host.bin: the S-CRTM version event data is not what its digest covers ("invalid SCRTM version event for PCR0")', () => {
      const [scrtm] = scrtmVersions(events(loadLog('go-tpm-tools', 'eventlogs', 'gdc-host.bin')));
      expect(scrtm?.event.dataMatchesDigest).to.equal(false);
      const [gce] = scrtmVersions(events(loadLog('go-tpm-tools', 'eventlogs', 'rhel8-uefi.bin')));
      expect(gce).to.include({ version: 'GCE Virtual Firmware v1', reason: null });
      expect(gce?.event.dataMatchesDigest).to.equal(true);
    });
    it('ubuntu-1804-amd-sev.bin: db holds the two Microsoft 2011 CAs as X.509 and no hashes (TestParseSecureBootState)', () => {
      const [db] = keyVariableMeasurements(events(loadLog('go-tpm-tools', 'eventlogs', 'ubuntu-1804-amd-sev.bin'))).db;
      const certs = ['MicCorUEFCA2011_2011-06-27.crt', 'MicWinProPCA2011_2011-10-19.crt'].map((name) =>
        readFileSync(vectorPath('go-tpm-tools', 'secure-boot', name)).toString('hex'),
      );
      expect(db?.signatures?.map((s) => Buffer.from(s.signatureData).toString('hex'))).to.deep.equal(certs);
      const variable = db?.event.content.kind === 'variable' ? db.event.content.variable : null;
      expect(parseSignatureLists(variable?.variableData ?? new Uint8Array()).map((l) => l.signatureType)).to.deep.equal([EFI_CERT_X509, EFI_CERT_X509]);
    });
  });

  describe('event data decoding', () => {
    it('tpm2-tools event-moklisttrusted.bin: event 80 is the GRUB menuentry command with its tabs', () => {
      const log = loadLog('tpm2-tools', 'event-moklisttrusted.bin');
      const event = log.events[80];
      const content = decodeEventContent(event?.untrustedType ?? 0, event?.untrustedData ?? new Uint8Array());
      expect(event?.untrustedType).to.equal(EV_IPL);
      expect(content).to.deep.equal({
        kind: 'text',
        encoding: 'ascii',
        text: 'grub_cmd: menuentry UEFI Firmware Settings --id uefi-firmware {\n\t\tfwsetup\n\t}\0',
      });
    });
    it('tpm2-tools event-uefivar.bin: the one event is the SecureBoot variable, value 01', () => {
      const log = loadLog('tpm2-tools', 'event-uefivar.bin');
      const event = log.events[1];
      expect(event?.untrustedType).to.equal(EV_EFI_VARIABLE_DRIVER_CONFIG);
      const variable = parseUefiVariable(event?.untrustedData ?? new Uint8Array());
      expect(variable.variableName).to.equal('8be4df61-93ca-11d2-aa0d-00e098032b8c');
      expect(variable.unicodeName).to.equal('SecureBoot');
      expect(Buffer.from(variable.variableData).toString('hex')).to.equal('01');
    });
    it('systemd-boot strings are UTF-16 (event-sd-boot-fedora37.bin PCR 12)', () => {
      const log = loadLog('tpm2-tools', 'event-sd-boot-fedora37.bin');
      const cmdline = events(log).find((e) => e.pcrIndex === 12);
      expect(cmdline?.content).to.deep.equal({ kind: 'text', encoding: 'utf16le', text: ' console=ttyS0 console=tty0 efi=debug \0' });
      expect(cmdline?.dataMatchesDigest).to.equal(true);
    });
    it('boot applications carry their device path (shim then GRUB on GCE Ubuntu 21.04)', () => {
      const apps = events(loadLog('go-tpm-tools', 'eventlogs', 'ubuntu-2104-no-secure-boot.bin')).filter((e) => e.content.kind === 'image-load');
      expect(apps.map((e) => (e.content.kind === 'image-load' ? e.content.image.devicePathText : ''))).to.deep.equal([
        'PciRoot(0x0)/Pci(0x3,0x0)/Path(3,2,01000000)/HD(15,GPT,9cef6107-0e4e-444c-8839-cf71b1250d5c,0x2800,0x35000)/\\EFI\\ubuntu\\shimx64.efi',
        '\\EFI\\ubuntu\\grubx64.efi',
      ]);
    });
    it('malformed content is reported, not thrown', () => {
      expect(decodeEventContent(EV_EFI_VARIABLE_DRIVER_CONFIG, new Uint8Array(5)).kind).to.equal('malformed');
      expect(decodeEventContent(EV_S_CRTM_VERSION, new Uint8Array([1, 2, 3]))).to.deep.equal({
        kind: 'malformed',
        reason: 'S-CRTM version is neither a NUL-terminated UCS-2 string nor a GUID (3 byte(s))',
      });
    });
  });
});
