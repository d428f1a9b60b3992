import type { Logger } from 'pino';
import type { PushAttestations } from './push-attestations.js';
import type { PushSessions } from './push-sessions.js';

/**
 * Runs the push liveness sweep (`PushAttestations.sweepSilence`) and the session clean-up every
 * `everySeconds`, and once at start: push agents that went silent while no verifier ran are failed
 * as soon as one starts. A sweep that fails (database away) is logged and tried at the next tick.
 */
export class PushLiveness {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly attestations: PushAttestations,
    private readonly sessions: PushSessions,
    private readonly everySeconds: number,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    await this.tick();
  }

  /** Runs one sweep now (tests, and the timer). */
  async tick(): Promise<void> {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.running = (async () => {
      try {
        await this.attestations.sweepSilence();
        await this.sessions.sweep();
      } catch (error) {
        this.log.error({ err: error }, 'push liveness sweep failed; trying again at the next tick');
      }
    })();
    await this.running;
    if (!this.closed) {
      this.timer = setTimeout(() => void this.tick(), this.everySeconds * 1000);
      this.timer.unref();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.running;
  }
}
