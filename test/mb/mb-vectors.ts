import { readFileSync } from 'node:fs';
import { vectorPath } from '../helpers/paths.js';
import type { ParsedEventLog } from '../../lib/mb/event-log.js';
import { parseEventLogInput } from '../../lib/mb/event-log-input.js';
import { pcrBanksToJson, replayEventLog } from '../../lib/mb/replay.js';

/** Test-side access to the shared UEFI event-log vectors (see ../shared/vectors/INDEX.md). */

export type PcrJson = Record<string, Record<string, string>>;

export function vectorBytes(...parts: string[]): Uint8Array {
  return new Uint8Array(readFileSync(vectorPath(...parts)));
}

export function vectorJson<T>(...parts: string[]): T {
  return JSON.parse(readFileSync(vectorPath(...parts), 'utf8')) as T;
}

export function loadLog(...parts: string[]): ParsedEventLog {
  return parseEventLogInput(vectorBytes(...parts));
}

export function replayJson(log: ParsedEventLog): PcrJson {
  return pcrBanksToJson(replayEventLog(log).banks);
}

/** The Windows SHA1-format log and its 24 quoted SHA-1 PCRs, from go-attestation's JSON dump. */
export function windowsVector(): { raw: Uint8Array; pcrs: PcrJson } {
  const dump = vectorJson<{ Log: { Raw: string; PCRs: { Index: number; Digest: string }[] } }>(
    'go-attestation',
    'windows_gcp_shielded_vm.json',
  );
  const sha1: Record<string, string> = {};
  for (const pcr of dump.Log.PCRs) {
    sha1[String(pcr.Index)] = Buffer.from(pcr.Digest, 'base64').toString('hex');
  }
  return { raw: new Uint8Array(Buffer.from(dump.Log.Raw, 'base64')), pcrs: { sha1 } };
}

export interface GoTpmToolsLog {
  readonly expected_pcrs: PcrJson;
  readonly events_parsed_by_us: number;
  readonly expected_efi_app_digests?: Record<string, string[]>;
  readonly expected_efi_app_digests_note?: string;
  readonly expected_linux_kernel_cmdline?: string;
  readonly expected_error_substrings: string[] | null;
}

export function goTpmToolsLogs(): Record<string, GoTpmToolsLog> {
  return vectorJson<{ logs: Record<string, GoTpmToolsLog> }>('go-tpm-tools', 'EXPECTED_FROM_TESTS.json').logs;
}

/** The sha256 PCRs 0-23 a TPM would hold after booting with `log` (its own replay; PCR 10 is ignored by verifyReplay). */
export function selfQuote(log: ParsedEventLog): PcrJson {
  const replay = replayJson(log).sha256 ?? {};
  const sha256: Record<string, string> = {};
  for (let pcr = 0; pcr < 24; pcr++) {
    const initial = pcr === 0 && log.startupLocality !== null ? `${'00'.repeat(31)}0${log.startupLocality}` : '00'.repeat(32);
    sha256[String(pcr)] = replay[String(pcr)] ?? initial;
  }
  return { sha256 };
}

/**
 * Every shipped real log a refstate can be made from (createRefstate checks the refstate against the
 * log, so each passes it), with its Secure Boot state. Also the real logs of the `boot-log` bench.
 */
export const SELF_REFSTATE_LOGS: readonly { parts: readonly string[]; secureBoot: boolean }[] = [
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
