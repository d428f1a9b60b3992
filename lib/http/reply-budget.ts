/** Replies up to this many bytes are not counted: an agent's steady quote reply is a few KB. */
export const UNCOUNTED_REPLY_BYTES = 256 * 1024;

/** A reply's claim on a `ReplyBudget`: granted at once or later; `release` ends it, granted or still waiting. */
export interface ReplyHold {
  readonly granted: boolean;
  release(): void;
}

interface Waiter {
  readonly bytes: number;
  readonly onGranted: () => void;
  hold: { granted: boolean; released: boolean };
}

/**
 * Bytes of replies a client process reads and decodes at once, across servers, by each reply's
 * declared body length (`Content-Length`, else the client's reply limit). The verifier's pull loop
 * shares one among its agents' connections: an agent may answer a quote with 64 MiB (a whole IMA log),
 * and judging one costs seconds of CPU and several times its size in heap, so a few hostile agents
 * answering together could otherwise run the verifier out of memory. A reply that does not fit waits,
 * first come first served, with its connection paused (the server's writes back up, nothing is read);
 * its request's deadline still runs, so a reply that waits too long fails its own request. Replies of
 * at most `UNCOUNTED_REPLY_BYTES` never wait. A reply larger than the whole budget is granted when
 * nothing else is held, so every reply is read eventually.
 */
export class ReplyBudget {
  private held = 0;
  private peak = 0;
  private readonly waiting: Waiter[] = [];

  constructor(readonly bytes: number) {
    if (!Number.isInteger(bytes) || bytes < 1) {
      throw new RangeError('a reply budget is a positive number of bytes');
    }
  }

  /** Counted bytes held now. */
  get inFlight(): number {
    return this.held;
  }

  /** The most counted bytes held at once so far. */
  get highWater(): number {
    return this.peak;
  }

  /** Replies waiting for room. */
  get queued(): number {
    return this.waiting.length;
  }

  /**
   * Claims `bytes` for one reply. Granted at once (`granted` true) when they fit and nobody waits;
   * otherwise `onGranted` is called once they are granted, unless the hold is released first.
   */
  reserve(bytes: number, onGranted: () => void): ReplyHold {
    if (bytes <= UNCOUNTED_REPLY_BYTES) {
      return { granted: true, release: () => undefined };
    }
    const waiter: Waiter = { bytes, onGranted, hold: { granted: false, released: false } };
    const state = waiter.hold;
    const hold: ReplyHold = {
      get granted() {
        return state.granted;
      },
      release: () => this.release(waiter),
    };
    if (this.waiting.length === 0 && this.fits(bytes)) {
      this.take(waiter);
    } else {
      this.waiting.push(waiter);
    }
    return hold;
  }

  private fits(bytes: number): boolean {
    return this.held === 0 || this.held + bytes <= this.bytes;
  }

  private take(waiter: Waiter): void {
    waiter.hold.granted = true;
    this.held += waiter.bytes;
    this.peak = Math.max(this.peak, this.held);
  }

  private release(waiter: Waiter): void {
    if (waiter.hold.released) return;
    waiter.hold.released = true;
    if (!waiter.hold.granted) {
      this.waiting.splice(this.waiting.indexOf(waiter), 1);
    } else {
      this.held -= waiter.bytes;
    }
    this.grantWaiting();
  }

  private grantWaiting(): void {
    for (let next = this.waiting[0]; next !== undefined && this.fits(next.bytes); next = this.waiting[0]) {
      this.waiting.shift();
      this.take(next);
      next.onGranted();
    }
  }
}
