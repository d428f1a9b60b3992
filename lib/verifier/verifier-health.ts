import { messageOf } from './error-message.js';

/**
 * One write of an agent's verdict (or a statement the verdict waits for) as its writer marks it: the
 * object itself is the mark's key, so two writes of one agent failing at once are marked apart, and
 * the one that settles first does not clear the other's (keyed by agent, it did: `/health` read ready
 * while a write still failed).
 */
export interface AgentWrite {
  readonly agentId: string;
}

/**
 * Whether this verifier can do its job, for the public `GET /health`: it is NOT ready while any
 * round's (or liveness check's) verdict waits to be stored (a verdict not committed is one nobody can act on), while an
 * agent it holds cannot be loaded to be polled or its row cannot be read again, while its lease sweep
 * fails, or while the database does not answer. Fed by the pull loop, the push verdicts and the
 * liveness monitor; read by the route.
 */
export class VerifierHealth {
  /** Each write that failed and is still being retried, with its last error. */
  private readonly unstored = new Map<AgentWrite, string>();
  /** Agents of this process whose policies could not be read (retried with back-off): nobody polls them meanwhile. */
  private readonly unloaded = new Map<string, string>();
  /** Agents whose row the pull loop could not read again (retried with back-off): nobody polls them meanwhile. */
  private readonly unread = new Map<string, string>();
  private sweepError: string | undefined;
  /** Nodes without a TPM whose last check's verdict could not be stored (kept and stored again). */
  private readonly unstoredLiveness = new Map<string, string>();

  /** `write` could not be stored (`error`); it will be retried. */
  writeFailed(write: AgentWrite, error: unknown): void {
    this.unstored.set(write, messageOf(error));
  }

  /** `write` is stored, refused, or given up at shutdown: its mark goes, other writes' of the agent stay. */
  writeSettled(write: AgentWrite): void {
    this.unstored.delete(write);
  }

  /** The pull loop could not read `agentId`'s row again (`error`); it will be tried again. */
  rereadFailed(agentId: string, error: unknown): void {
    this.unread.set(agentId, messageOf(error));
  }

  /** `agentId`'s row was read again, or the agent left this process (its retry went with it). */
  rereadSettled(agentId: string): void {
    this.unread.delete(agentId);
  }

  /** `agentId` could not be loaded to be polled (`error`); it will be tried again. */
  loadFailed(agentId: string, error: unknown): void {
    this.unloaded.set(agentId, messageOf(error));
  }

  /** `agentId` is loaded, failed as unloadable, or left this process. */
  loadSettled(agentId: string): void {
    this.unloaded.delete(agentId);
  }

  /** The verdict of a liveness check of `agentId` could not be stored (`error`); it will be retried. */
  livenessWriteFailed(agentId: string, error: unknown): void {
    this.unstoredLiveness.set(agentId, messageOf(error));
  }

  /** The last liveness verdict of `agentId` is stored (or dropped: the node was re-enrolled or deleted). */
  livenessWriteSettled(agentId: string): void {
    this.unstoredLiveness.delete(agentId);
  }

  sweepFailed(error: unknown): void {
    this.sweepError = messageOf(error);
  }

  sweepSucceeded(): void {
    this.sweepError = undefined;
  }

  /** Agents with a verdict not stored yet. */
  get unstoredRounds(): number {
    return new Set(Array.from(this.unstored.keys(), (write) => write.agentId)).size;
  }

  /** Nodes without a TPM whose last verdict is not stored yet. */
  get unstoredLivenessVerdicts(): number {
    return this.unstoredLiveness.size;
  }

  /** Agents held here that cannot be loaded to be polled yet, or whose row cannot be read again. */
  get unloadedAgents(): number {
    return this.unloaded.size + this.unread.size;
  }

  /** Why the verifier is not ready, or undefined when it is (as far as the pull loop knows). */
  problem(): string | undefined {
    const [first] = this.unstored.values();
    if (first !== undefined) {
      return `${this.unstoredRounds} round(s) not stored: ${first}`;
    }
    const [liveness] = this.unstoredLiveness.values();
    if (liveness !== undefined) {
      return `${this.unstoredLiveness.size} liveness verdict(s) not stored: ${liveness}`;
    }
    const [unloaded] = this.unloaded.values();
    if (unloaded !== undefined) {
      return `${this.unloaded.size} agent(s) not polled, their policies cannot be read: ${unloaded}`;
    }
    const [unread] = this.unread.values();
    if (unread !== undefined) {
      return `${this.unread.size} agent(s) not polled, their row cannot be read again: ${unread}`;
    }
    return this.sweepError === undefined ? undefined : `lease sweep failed: ${this.sweepError}`;
  }
}
