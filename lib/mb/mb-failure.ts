/**
 * A measured-boot finding, shaped like a Keylime failure event (`keylime/failure.py`): an event id
 * `measured_boot.<…>` and a context object (Keylime serialises it to a JSON string). Measured-boot
 * findings are recoverable in Keylime's sense: the next attestation may succeed.
 */
export interface MbFailure {
  /**
   * `measured_boot.invalid_pcr_<n>`, `measured_boot.missing_pcrs`, `measured_boot.policy_<name>` or
   * `measured_boot.parser.<…>` (spec §7.8, §7.9); `MB_MATCH_ALLOWANCE_FAILURE_ID` is raised by the engine.
   */
  readonly eventId: string;
  readonly context: Readonly<Record<string, unknown>>;
  readonly recoverable: boolean;
}

/** Keylime's id for an event log that could not be parsed (its parser is `tpm2_eventlog`). */
export const MB_PARSER_FAILURE_ID = 'measured_boot.parser.tpm2_eventlog.error';
/**
 * ironlime's own: the refstate's `kernel_cmdline` patterns would pass the round's match allowance
 * (lib/python-regex/match-allowance.ts), so the refstate was not judged.
 */
export const MB_MATCH_ALLOWANCE_FAILURE_ID = 'measured_boot.policy.match_allowance_exceeded';
/** Keylime's id for a base64 `mb_measurement_list` that does not decode. */
export const MB_BASE64_FAILURE_ID = 'measured_boot.parser.log.base64decode';

export function mbFailure(eventId: string, context: Record<string, unknown>): MbFailure {
  return { eventId, context, recoverable: true };
}
