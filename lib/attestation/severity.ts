import { InvalidConfig } from '../../interfaces/errors.js';
import type { Failure, FailureEvent } from './internal/failure.js';

/**
 * Severity labels and the `severity_policy` (keylime/failure.py `_eval_severity_config`; spec §7.9).
 * Labels are ordered from least to most severe; a failure's `severity_level` is its label's index.
 * The policy is an ordered list of rules; the first rule whose `event_id` regex matches the whole
 * event id gives the label. Irrecoverable events always get the highest label.
 */

/** One `severity_policy` rule, with Keylime's configuration key names. */
export interface SeverityRule {
  readonly event_id: string;
  readonly severity_label: string;
}

export interface SeverityConfig {
  /** Ordered least to most severe (`[verifier] severity_labels`). */
  readonly labels: readonly string[];
  /** First match wins (`[verifier] severity_policy`). */
  readonly policy: readonly SeverityRule[];
}

/** Keylime's default labels, least to most severe. */
export const DEFAULT_SEVERITY_LABELS: readonly string[] = Object.freeze([
  'info',
  'notice',
  'warning',
  'error',
  'critical',
  'alert',
  'emergency',
]);

/** A validated, compiled severity configuration. Build it once with `compileSeverityPolicy`. */
export interface SeverityPolicy {
  readonly labels: readonly string[];
  readonly maxLevel: number;
  readonly rules: readonly { readonly pattern: RegExp; readonly level: number }[];
}

/**
 * Validates and compiles a severity configuration (defaults: Keylime's labels and policy).
 * Stricter than Keylime, which logs and falls back to the maximum label: an unknown label, a duplicate
 * label or a regex that does not compile is a configuration error raised at startup.
 * @throws InvalidConfig
 */
export function compileSeverityPolicy(config: Partial<SeverityConfig> = {}): SeverityPolicy {
  const labels = config.labels ?? DEFAULT_SEVERITY_LABELS;
  if (labels.length === 0) {
    throw new InvalidConfig('severity_labels', 'must name at least one label');
  }
  if (new Set(labels).size !== labels.length) {
    throw new InvalidConfig('severity_labels', 'labels must be unique');
  }
  const maxLabel = labels[labels.length - 1] as string;
  // Keylime's default policy: every event gets the highest label, so any failure stops polling.
  const policy = config.policy ?? [{ event_id: '.*', severity_label: maxLabel }];
  const rules = policy.map((rule, index) => {
    const level = labels.indexOf(rule.severity_label);
    if (level < 0) {
      throw new InvalidConfig(`severity_policy[${index}].severity_label`, `unknown label "${rule.severity_label}"`);
    }
    return { pattern: compileFullMatch(rule.event_id, index), level };
  });
  return Object.freeze({ labels: Object.freeze([...labels]), maxLevel: labels.length - 1, rules: Object.freeze(rules) });
}

/** Python's `re.fullmatch`: anchor the whole pattern, keeping alternations inside the anchors. */
function compileFullMatch(source: string, index: number): RegExp {
  try {
    return new RegExp(`^(?:${source})$`);
  } catch (error) {
    throw new InvalidConfig(`severity_policy[${index}].event_id`, `not a valid regular expression: ${source}`, {
      cause: error,
    });
  }
}

/** The severity level of one event: first matching rule, maximum when none matches or it is irrecoverable. */
export function severityLevelOf(policy: SeverityPolicy, eventId: string, recoverable: boolean): number {
  if (!recoverable) {
    return policy.maxLevel;
  }
  const rule = policy.rules.find((candidate) => candidate.pattern.test(eventId));
  return rule === undefined ? policy.maxLevel : rule.level;
}

/** Attaches severity labels to events, in order. */
export function labelFailures(policy: SeverityPolicy, events: readonly FailureEvent[]): Failure[] {
  return events.map((event) => {
    const severityLevel = severityLevelOf(policy, event.eventId, event.recoverable);
    return { ...event, severityLevel, severityLabel: policy.labels[severityLevel] as string };
  });
}

/** The first failure with the highest level (Keylime's `highest_severity_event`), or undefined. */
export function mostSevere(failures: readonly Failure[]): Failure | undefined {
  let highest: Failure | undefined;
  for (const failure of failures) {
    if (highest === undefined || failure.severityLevel > highest.severityLevel) {
      highest = failure;
    }
  }
  return highest;
}
