import { expect } from 'chai';
import { createRefstate } from '../../lib/mb/create-refstate.js';
import { loadLog } from './mb-vectors.js';

/**
 * Every shipped real log that a refstate can be made from passes the policy with it: createRefstate
 * evaluates its refstate against the same log and throws when the log fails. A new event rule that
 * refuses a healthy boot's event fails here.
 */
const LOGS: readonly { parts: readonly string[]; secureBoot: boolean }[] = [
  { parts: ['keylime', 'measured_boot', 'binary_bios_measurements-secureboot'], secureBoot: true },
  { parts: ['keylime', 'measured_boot', 'binary_bios_measurements'], secureBoot: false },
  { parts: ['keylime', 'measured_boot', 'mb_log.b64'], secureBoot: true },
  { parts: ['go-tpm-tools', 'attestations', 'gce-cos-85-no-nonce.extracted', 'event_log.bin'], secureBoot: true },
  { parts: ['go-tpm-tools', 'eventlogs', 'ubuntu-1804-amd-sev.bin'], secureBoot: false },
  { parts: ['go-tpm-tools', 'eventlogs', 'cos-85-amd-sev.bin'], secureBoot: true },
  { parts: ['go-tpm-tools', 'eventlogs', 'cos-93-amd-sev.bin'], secureBoot: true },
  { parts: ['go-tpm-tools', 'eventlogs', 'cos-101-amd-sev.bin'], secureBoot: true },
  { parts: ['go-tpm-tools', 'eventlogs', 'ubuntu-2404-amd-sevsnp.bin'], secureBoot: false },
  { parts: ['go-tpm-tools', 'eventlogs', 'rhel8-uefi.bin'], secureBoot: true },
  { parts: ['go-tpm-tools', 'eventlogs', 'ubuntu-2104-no-dbx.bin'], secureBoot: false },
  { parts: ['go-tpm-tools', 'eventlogs', 'ubuntu-2104-no-secure-boot.bin'], secureBoot: false },
  { parts: ['go-tpm-tools', 'eventlogs', 'eventlogwithsp800155.bin'], secureBoot: true },
  { parts: ['go-tpm-tools', 'eventlogs', 'confidential-gke-debug-251000_eventlog.bin'], secureBoot: true },
  { parts: ['tpm2-tools', 'event-moklisttrusted.bin'], secureBoot: true },
  { parts: ['tpm2-tools', 'event-bootorder.bin'], secureBoot: false },
  { parts: ['tpm2-tools', 'event-gce-ubuntu-2104-log.bin'], secureBoot: false },
  { parts: ['go-attestation', 'coreos_36_shielded_vm_no_secure_boot_eventlog'], secureBoot: false },
  { parts: ['go-attestation', 'ubuntu_2104_shielded_vm_no_secure_boot_eventlog'], secureBoot: false },
  { parts: ['rust-keylime', 'uefi_log.bin'], secureBoot: false },
];

describe('mb refstate: every shipped real log passes a refstate made from it', () => {
  for (const { parts, secureBoot } of LOGS) {
    it(parts.join('/'), () => {
      const refstate = createRefstate(loadLog(...parts), { withoutSecureBoot: !secureBoot });
      expect(refstate.has_secureboot).to.equal(secureBoot);
    });
  }
});
