/**
 * Failure events, shaped like Keylime's (keylime/failure.py; spec §7.9): an event id
 * `<component>.<sub_components…>.<event>`, a JSON context object, and whether the check that raised it
 * let the other checks run (`recoverable`). The engine's checks produce unlabelled `FailureEvent`s;
 * `labelFailures` (severity.ts) attaches the severity label from the configured `severity_policy`.
 */

/**
 * Keylime's failure components. `qoute_validation` is misspelt upstream and the misspelling is part of
 * every event id peers and operators match on (failure.py `Component.QUOTE_VALIDATION`), so we keep it.
 */
export const FailureComponent = {
  QUOTE_VALIDATION: 'qoute_validation',
  PCR_VALIDATION: 'pcr_validation',
  MEASURED_BOOT: 'measured_boot',
  IMA: 'ima',
  INTERNAL: 'internal',
  TEE: 'tee_attestation',
  DEFAULT: 'default',
} as const;

export type FailureComponent = (typeof FailureComponent)[keyof typeof FailureComponent];

/** A JSON object; plain messages are wrapped as `{message}` like Keylime's `Event` does. */
export type FailureContext = Readonly<Record<string, unknown>>;

/** One failure event before a severity label is attached. */
export interface FailureEvent {
  readonly eventId: string;
  readonly context: FailureContext;
  /** False when the check returned early and later checks were skipped (Keylime `recoverable`). */
  readonly recoverable: boolean;
}

/** A failure event with its severity from the severity policy (spec §7.9). */
export interface Failure extends FailureEvent {
  readonly severityLabel: string;
  /** Index of `severityLabel` in the ordered label list (Keylime `severity_level`, 0 = lowest). */
  readonly severityLevel: number;
}

/**
 * Builds an event id from a component, optional sub-components and the event name, then the event.
 * A string context becomes `{message: context}` as in Keylime.
 */
export function failureEvent(
  component: FailureComponent,
  event: string,
  context: string | FailureContext,
  recoverable: boolean,
  subComponents: readonly string[] = [],
): FailureEvent {
  const eventId = [component, ...subComponents, event].join('.');
  return {
    eventId,
    context: typeof context === 'string' ? { message: context } : context,
    recoverable,
  };
}

/** Keylime's `internal.verifier.*` events the polling loop raises itself (spec §6.2, §7.9). */
export const InternalVerifierEvent = {
  NOT_REACHABLE: 'not_reachable',
  NOT_REACHABLE_V: 'not_reachable_v',
  NO_QUOTE: 'no_quote',
  NO_V: 'no_v',
  EXCEPTION: 'exception',
  VERSION_NOT_SUPPORTED: 'version_not_supported',
} as const;

export type InternalVerifierEvent = (typeof InternalVerifierEvent)[keyof typeof InternalVerifierEvent];

/**
 * An `internal.verifier.<event>` failure for the polling loop (agent unreachable, no quote, exception).
 * Keylime raises all of these as irrecoverable.
 */
export function internalVerifierFailure(event: InternalVerifierEvent, context: string | FailureContext): FailureEvent {
  return failureEvent(FailureComponent.INTERNAL, event, context, false, ['verifier']);
}
