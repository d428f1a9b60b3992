import type { BootEvent } from '../boot-events.js';
import { SHIM_LOCK_GUID } from './efi-guid.js';
import { refHex, type PolicyFinding } from './policy-finding.js';
import { variableOf } from './secure-boot-variables.js';
import { bytesEqual } from '../../bytes/bytes-equal.js';

/**
 * shim's own validation disabled (MokSBState 1, set with `mokutil --disable-validation`): shim then
 * starts whatever it loads unverified and tells the kernel Secure Boot is off (MokSBStateRT), which
 * lifts the kernel's lockdown and module signature checks. shim measures the variable, when it is
 * set, into PCR 7 as an EV_EFI_VARIABLE_AUTHORITY UEFI_VARIABLE_DATA (mok.c MOK_VARIABLE_MEASURE,
 * tpm.c tpm_measure_variable), whose digest covers the name as well as the value; so that record
 * decides, found by content whatever type it claims. PCR 14's MokSBState record does not: its name
 * is not measured, and its byte 1 is MokPolicy's or MokListTrusted's too. Anything but a proven
 * single byte 0 fails, like Keylime's `example` policy, which refuses every MokSBState record. A
 * refstate without Secure Boot does not judge it: shim verifies nothing then anyway.
 */
export function shimValidationFindings(events: readonly BootEvent[], secureBoot: boolean): PolicyFinding[] {
  if (!secureBoot) {
    return [];
  }
  const findings: PolicyFinding[] = [];
  for (const e of events) {
    const variable = e.pcrIndex === 7 && namesShimVariable(e.untrustedData) ? variableOf(e) : null;
    if (variable === null || variable.variableName !== SHIM_LOCK_GUID || variable.unicodeName !== 'MokSBState') {
      continue;
    }
    const value = variable.variableData;
    if (!e.dataMatchesDigest || value.length !== 1 || value[0] !== 0) {
      findings.push({
        component: 'secure_boot',
        reason: "shim's validation is disabled (MokSBState is measured in PCR 7)",
        expected: 'no MokSBState, or the one byte 0',
        actual: value.length <= 16 ? refHex(value) : `${value.length} bytes`,
        events: [e.sequence],
      });
    }
  }
  return findings;
}

/** SHIM_LOCK_GUID as a UEFI_VARIABLE_DATA stores it (first three fields little-endian). */
const SHIM_LOCK_GUID_BYTES = Buffer.from('50ab5d6046e00043abb63dd810dd8b23', 'hex');

/** A cheap look at the GUID before parsing: most PCR 7 events are no shim variable. */
function namesShimVariable(data: Uint8Array): boolean {
  return data.length > SHIM_LOCK_GUID_BYTES.length && bytesEqual(data.subarray(0, SHIM_LOCK_GUID_BYTES.length), SHIM_LOCK_GUID_BYTES);
}
