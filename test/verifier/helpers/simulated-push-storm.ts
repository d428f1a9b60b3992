import { pino } from 'pino';
import type { AgentAttestationState } from '../../../lib/attestation/agent-state.js';
import { compileSeverityPolicy } from '../../../lib/attestation/severity.js';
import { PushLiveness } from '../../../lib/verifier/push/push-liveness.js';
import type { PushSessions } from '../../../lib/verifier/push/push-sessions.js';
import type { PushVerdictStore } from '../../../lib/verifier/push/push-verdict-store.js';
import type { SlowHashGate } from '../../../lib/verifier/push/slow-hash-gate.js';
import type { VerifierAgentRecord } from '../../../lib/verifier/verifier-agent-record.js';

/** Hashes that take `hashMs` of a simulated clock: each ends when `finishDue` is called at or after its end. */
export class SimulatedHashes {
  private readonly pending: { readonly doneAt: number; readonly finish: () => void }[] = [];

  constructor(
    private readonly now: () => number,
    private readonly hashMs: number,
  ) {}

  /** A hash for the gate: resolves once the simulated clock has passed its end. */
  readonly hash = (): Promise<void> => new Promise<void>((finish) => this.pending.push({ doneAt: this.now() + this.hashMs, finish }));

  /** Ends every hash whose time is up. */
  finishDue(): void {
    for (const due of this.pending.filter((h) => h.doneAt <= this.now())) {
      this.pending.splice(this.pending.indexOf(due), 1);
      due.finish();
    }
  }

  /** Ends every hash left, at the end of a simulation. */
  finishAll(): void {
    for (const left of this.pending.splice(0)) left.finish();
  }
}

/**
 * The verifier's real silence sweep on a simulated clock: its agents read from `repository`, a failure
 * stored by calling `failed`, the gate's busy time and speed taken from `gate` with hashes of `hashMs`.
 */
export function simulatedSilenceSweep(options: {
  readonly repository: {
    silentAgents(): Promise<string[]>;
    agentWithVersion(agentId: string): Promise<{ record: VerifierAgentRecord; agentVersion: string }>;
    attestingAgentCount(): Promise<number>;
  };
  readonly failed: (agent: VerifierAgentRecord, state: AgentAttestationState) => void;
  readonly gate: SlowHashGate;
  readonly hashMs: number;
  readonly now: () => number;
  readonly timeoutSeconds: number;
  readonly firstAttestationGraceSeconds: number;
}): PushLiveness {
  const { gate, hashMs } = options;
  return new PushLiveness(
    {
      repository: options.repository,
      verdicts: {
        store: (failing: VerifierAgentRecord, failed: AgentAttestationState) => {
          options.failed(failing, failed);
          return Promise.resolve({ stored: true, agentVersion: undefined });
        },
      } as unknown as PushVerdictStore,
      sessions: { sweep: () => Promise.resolve() } as unknown as PushSessions,
      isJudging: () => false,
      outage: { latest: () => undefined, close: () => undefined },
      // The gate's busy time on the simulated clock; its speed as simulated (its own estimate times real promises).
      slowHashes: { busy: (now) => gate.busy(now), hashingSeconds: (count) => (count * hashMs) / 1000 / gate.concurrency },
      log: pino({ level: 'silent' }),
      now: options.now,
    },
    {
      verifierId: 'default',
      timeout: options.timeoutSeconds,
      firstAttestationGrace: options.firstAttestationGraceSeconds,
      severityPolicy: compileSeverityPolicy(),
      everySeconds: 3600,
    },
  );
}
