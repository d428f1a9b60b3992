import { messageOf } from './error-message.js';

/**
 * Whether this verifier can do its job, for the public `GET /health`: it is NOT ready while any
 * round's (or liveness check's) verdict waits to be stored (a verdict not committed is one nobody can act on), while an
 * agent it holds cannot be loaded to be polled, while its lease sweep fails, or while the database
 * does not answer. Fed by the pull loop and the liveness monitor; read by the route.
 */
export class VerifierHealth {
  private readonly unstored = new Map<string, string>();
  /** Agents of this process whose policies could not be read (retried with back-off): nobody polls them meanwhile. */
  private readonly unloaded = new Map<string, string>();
  private sweepError: string | undefined;
  /** Nodes without a TPM whose last check's verdict could not be stored (kept and stored again). */
  private readonly unstoredLiveness = new Map<string, string>();

  /** A round of `agentId` could not be stored (`error`); it will be retried. */
  writeFailed(agentId: string, error: unknown): void {
    this.unstored.set(agentId, messageOf(error));
  }

  /** The last round of `agentId` is stored (or the agent left this process). */
  writeSettled(agentId: string): void {
    this.unstored.delete(agentId);
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

  /** Agents whose last round is not stored yet. */
  get unstoredRounds(): number {
    return this.unstored.size;
  }

  /** Nodes without a TPM whose last verdict is not stored yet. */
  get unstoredLivenessVerdicts(): number {
    return this.unstoredLiveness.size;
  }

  /** Agents held here that cannot be loaded to be polled yet. */
  get unloadedAgents(): number {
    return this.unloaded.size;
  }

  /** Why the verifier is not ready, or undefined when it is (as far as the pull loop knows). */
  problem(): string | undefined {
    const [first] = this.unstored.values();
    if (first !== undefined) {
      return `${this.unstored.size} round(s) not stored: ${first}`;
    }
    const [liveness] = this.unstoredLiveness.values();
    if (liveness !== undefined) {
      return `${this.unstoredLiveness.size} liveness verdict(s) not stored: ${liveness}`;
    }
    const [unloaded] = this.unloaded.values();
    if (unloaded !== undefined) {
      return `${this.unloaded.size} agent(s) not polled, their policies cannot be read: ${unloaded}`;
    }
    return this.sweepError === undefined ? undefined : `lease sweep failed: ${this.sweepError}`;
  }
}
