import type { BootEvent } from '../boot-events.js';
import { EventLogParseError } from '../../bytes/parse-errors.js';
import { EFI_GLOBAL_VARIABLE, EFI_IMAGE_SECURITY_DATABASE, SHIM_LOCK_GUID } from './efi-guid.js';
import * as ev from './event-types.js';
import { hasSignatureListsShape, parseUefiVariable, type UefiVariable } from './uefi-variable.js';

/**
 * Which PCR 7 events measure the Secure Boot configuration, decided by what the event's data says,
 * not by the type it claims: the type is not extended into the PCR, so a root user could relabel the
 * real `SecureBoot`=0 measurement as EV_EFI_VARIABLE_AUTHORITY and extend a `SecureBoot`=1 event at
 * runtime. Any PCR 7 event whose data is a UEFI_VARIABLE_DATA naming SecureBoot, PK, KEK (global
 * variable GUID), db or dbx (image security database GUID) is a measurement of that variable
 * (PFP §3.3.4.8, PCR[7]), with one exception: an EV_EFI_VARIABLE_AUTHORITY naming db whose data is
 * one EFI_SIGNATURE_DATA (the db entry that verified an image, PFP §3.3.4.8) rather than a list of
 * EFI_SIGNATURE_LISTs (the whole db).
 */

export type ConfigVariableName = 'SecureBoot' | 'PK' | 'KEK' | 'db' | 'dbx';

export interface ConfigVariableMeasurement {
  readonly name: ConfigVariableName;
  readonly variable: UefiVariable;
  readonly event: BootEvent;
}

const CONFIG_VARIABLES: readonly { name: ConfigVariableName; guid: string }[] = [
  { name: 'SecureBoot', guid: EFI_GLOBAL_VARIABLE },
  { name: 'PK', guid: EFI_GLOBAL_VARIABLE },
  { name: 'KEK', guid: EFI_GLOBAL_VARIABLE },
  { name: 'db', guid: EFI_IMAGE_SECURITY_DATABASE },
  { name: 'dbx', guid: EFI_IMAGE_SECURITY_DATABASE },
];

/**
 * Variables whose EV_EFI_VARIABLE_AUTHORITY records real boots log after PCR 7's separator: the db
 * entry (or shim's built-in vendor_db) that verified an image, and shim's SbatLevel, Shim (its
 * vendor certificate), MokListTrusted and MokListRT, as Keylime's `example` policy accepts them;
 * also shim's MokList (the enrolled MOK key or hash that verified an image: shim.c check_db_hash/
 * check_db_cert(L"MokList")), MokSBState (measured when set, mok.c MOK_VARIABLE_MEASURE) and SBAT
 * (shim 15.3/15.4's name for SbatLevel), which Keylime's policy would refuse on such boots.
 */
const AUTHORITY_VARIABLES: readonly { name: string; guid: string }[] = [
  { name: 'db', guid: EFI_IMAGE_SECURITY_DATABASE },
  { name: 'vendor_db', guid: EFI_IMAGE_SECURITY_DATABASE },
  { name: 'SbatLevel', guid: SHIM_LOCK_GUID },
  { name: 'Shim', guid: SHIM_LOCK_GUID },
  { name: 'MokListTrusted', guid: SHIM_LOCK_GUID },
  { name: 'MokListRT', guid: SHIM_LOCK_GUID },
  { name: 'MokList', guid: SHIM_LOCK_GUID },
  { name: 'MokSBState', guid: SHIM_LOCK_GUID },
  { name: 'SBAT', guid: SHIM_LOCK_GUID },
];

/** Every measurement of SecureBoot, PK, KEK, db and dbx in PCR 7, whatever type it claims, in log order. */
export function configVariableMeasurements(events: readonly BootEvent[]): ConfigVariableMeasurement[] {
  const out: ConfigVariableMeasurement[] = [];
  for (const event of events) {
    const variable = event.pcrIndex === 7 ? variableOf(event) : null;
    const name = variable === null ? null : configVariableName(event, variable);
    if (variable !== null && name !== null) {
      out.push({ name, variable, event });
    }
  }
  return out;
}

/** The configuration variable `variable` (the data of `event`) measures, or null. */
export function configVariableName(event: BootEvent, variable: UefiVariable): ConfigVariableName | null {
  const known = CONFIG_VARIABLES.find((k) => k.guid === variable.variableName && k.name === variable.unicodeName);
  if (known === undefined) {
    return null;
  }
  if (known.name === 'db' && event.untrustedType === ev.EV_EFI_VARIABLE_AUTHORITY && !isSignatureLists(variable.variableData)) {
    return null;
  }
  return known.name;
}

/** Whether the variable is one whose EV_EFI_VARIABLE_AUTHORITY records the policy accepts. */
export function isAuthorityVariable(variable: UefiVariable): boolean {
  return AUTHORITY_VARIABLES.some((k) => k.guid === variable.variableName && k.name === variable.unicodeName);
}

/** The event's data as UEFI_VARIABLE_DATA, or null when it does not have that shape. */
export function variableOf(event: BootEvent): UefiVariable | null {
  try {
    return parseUefiVariable(event.untrustedData);
  } catch (error) {
    if (error instanceof EventLogParseError) {
      return null;
    }
    throw error;
  }
}

function isSignatureLists(data: Uint8Array): boolean {
  return data.length > 0 && hasSignatureListsShape(data);
}
