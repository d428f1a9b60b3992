import { bootEventsOfVerifiedLogStepwise } from './boot-events.js';
import { mbFailure, type MbFailure } from './mb-failure.js';
import type { MbRefstate } from './mb-refstate.js';
import type { MatchAllowance } from '../python-regex/match-allowance.js';
import { bootChainFindings } from './internal/policy-boot-chain.js';
import { EXAMPLE_POLICY_PCRS, eventRuleFindings } from './internal/policy-event-rules.js';
import { POLICY_BANK, type PolicyFinding } from './internal/policy-finding.js';
import { secureBootFindings } from './internal/policy-secure-boot.js';
import type { VerifiedEventLog } from './internal/verified-event-log.js';
import { finish, type Stepwise } from '../ima/stepwise.js';
import { EVENTS_PER_STEP } from './internal/events-per-step.js';

/** The outcome of evaluating a verified log against a refstate. */
export interface MbPolicyEvaluation {
  readonly passed: boolean;
  /** `example`: Keylime's policy of that name, the only one implemented. */
  readonly policy: 'example';
  /** The PCRs the policy examined (`EXAMPLE_POLICY_PCRS`). */
  readonly pcrs: readonly number[];
  /** Every difference found, by component. */
  readonly findings: readonly PolicyFinding[];
  /** Keylime events: `measured_boot.missing_pcrs` or one `measured_boot.policy_example` per finding. */
  readonly failures: readonly MbFailure[];
}

/**
 * Evaluates a node's boot log against a refstate with the semantics of Keylime's `example` policy
 * (keylime/mba/elchecking/example.py): Secure Boot state, PK/KEK/db/dbx, MOK lists, S-CRTM and
 * firmware, option ROMs (ironlime extension), the boot chain (shim, GRUB, kernel or vmlinuz, initrd)
 * and the kernel command line; every event in PCRs 0-9 and 14 must be of a kind the policy expects.
 *
 * Takes only a `VerifiedEventLog`, i.e. the part of the log whose replay matched the quote
 * (`verifyReplay`), and compares SHA-256 digests; if any of PCRs 0-9, 14 was not verified it
 * reports `measured_boot.missing_pcrs` and checks nothing else. Event contents (variables, command
 * line, separators, actions) count only when their digest proves them. It does not check the quote.
 * With `allowance`, matching the refstate's `kernel_cmdline` patterns is charged to it.
 *
 * @throws whatever `allowance` throws (`MatchAllowanceExceeded` by default) when a pattern's run could pass it.
 */
export function evaluateMbPolicy(log: VerifiedEventLog, refstate: MbRefstate, allowance?: MatchAllowance): MbPolicyEvaluation {
  return finish(evaluateMbPolicyStepwise(log, refstate, allowance));
}

/** `evaluateMbPolicy`, pausing between chunks of events and between its checks (`Stepwise`): the same evaluation. */
export function* evaluateMbPolicyStepwise(log: VerifiedEventLog, refstate: MbRefstate, allowance?: MatchAllowance): Stepwise<MbPolicyEvaluation> {
  const missing = EXAMPLE_POLICY_PCRS.filter((pcr) => !log.pcrs.includes(pcr));
  if (missing.length > 0) {
    const failure = mbFailure('measured_boot.missing_pcrs', {
      context: `${log.bank.name.toUpperCase()} PCRs the measured boot policy needs are not verified by the quote`,
      data: missing,
    });
    return { passed: false, policy: 'example', pcrs: EXAMPLE_POLICY_PCRS, findings: [], failures: [failure] };
  }
  const findings: PolicyFinding[] = [];
  if (log.bank.name !== POLICY_BANK) {
    findings.push({
      component: 'bank',
      reason: `the policy compares SHA-256 digests, but only the ${log.bank.name} bank was verified against the quote`,
      expected: POLICY_BANK,
      actual: log.bank.name,
    });
  } else {
    const events = yield* bootEventsOfVerifiedLogStepwise(log);
    // Not `push(...)`: a finding per boot event, and some 120,000 arguments overflow the stack.
    append(findings, yield* eventRuleFindings(events));
    append(findings, yield* secureBootFindings(events, refstate));
    append(findings, yield* bootChainFindings(events, refstate, allowance));
  }
  return {
    passed: findings.length === 0,
    policy: 'example',
    pcrs: EXAMPLE_POLICY_PCRS,
    findings,
    failures: yield* policyFailures(findings),
  };
}

/** A failure per finding: a hostile log may make one per event. */
function* policyFailures(findings: readonly PolicyFinding[]): Stepwise<MbFailure[]> {
  const failures: MbFailure[] = [];
  for (const finding of findings) {
    failures.push(policyFailure(finding));
    if (failures.length % EVENTS_PER_STEP === 0) yield;
  }
  return failures;
}

function append(findings: PolicyFinding[], more: readonly PolicyFinding[]): void {
  for (const finding of more) findings.push(finding);
}

function policyFailure(f: PolicyFinding): MbFailure {
  return mbFailure('measured_boot.policy_example', {
    context: `Boot event log does not match the measured boot refstate: ${f.component}: ${f.reason}`,
    policy: 'example',
    component: f.component,
    reason: f.reason,
    ...(f.expected === undefined ? {} : { expected: f.expected }),
    ...(f.actual === undefined ? {} : { actual: f.actual }),
    ...(f.events === undefined ? {} : { events: f.events }),
  });
}
