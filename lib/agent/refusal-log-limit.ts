/** Refusals logged one by one per peer address in a window (`RefusalLogLimit`). */
export const DEFAULT_REFUSALS_LOGGED_PER_PEER = 5;
/** The window over which a peer's refusals are counted (`RefusalLogLimit`). */
export const DEFAULT_REFUSAL_WINDOW_MS = 60_000;
/**
 * Peer addresses counted apart in one window; refusals from more addresses than this share one count
 * (`OTHER_PEERS`), so a peer with many addresses cannot grow the map without bound.
 */
export const MAX_COUNTED_PEERS = 1024;
/** The key under which refusals past `MAX_COUNTED_PEERS` addresses are counted. */
export const OTHER_PEERS = 'other addresses';

export interface RefusalLogLimits {
  readonly perPeer?: number;
  readonly windowMs?: number;
}

/** A summary of one address's refusals not logged one by one in a window. */
export interface UnloggedRefusals {
  readonly address: string;
  readonly count: number;
}

/**
 * How many refused clients the agent logs one by one: the first `perPeer` refusals per peer address
 * (its IP, not its port: a flood opens a new port per handshake) in each window of `windowMs`, then
 * only a count, handed to `summarize` once per address when the window ends (or when the limit is
 * closed). A peer hammering handshakes then costs at most `perPeer + 1` lines a window.
 */
export class RefusalLogLimit {
  private readonly perPeer: number;
  private readonly counts = new Map<string, { logged: number; unlogged: number }>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly summarize: (unlogged: UnloggedRefusals) => void,
    limits: RefusalLogLimits = {},
  ) {
    this.perPeer = limits.perPeer ?? DEFAULT_REFUSALS_LOGGED_PER_PEER;
    const windowMs = limits.windowMs ?? DEFAULT_REFUSAL_WINDOW_MS;
    if (!Number.isInteger(this.perPeer) || this.perPeer < 0 || !Number.isInteger(windowMs) || windowMs < 1) {
      throw new RangeError('refusal log limits: a non-negative count per peer and a positive window');
    }
    this.timer = setInterval(() => this.endWindow(), windowMs);
    this.timer.unref();
  }

  /** Whether this refusal from `address` is logged on its own line; if not, it is counted for the summary. */
  admit(address: string): boolean {
    const key = this.counts.has(address) || this.counts.size < MAX_COUNTED_PEERS ? address : OTHER_PEERS;
    const count = this.counts.get(key) ?? { logged: 0, unlogged: 0 };
    this.counts.set(key, count);
    if (key !== OTHER_PEERS && count.logged < this.perPeer) {
      count.logged += 1;
      return true;
    }
    count.unlogged += 1;
    return false;
  }

  /** Summarizes what is counted and stops the window's timer. */
  close(): void {
    clearInterval(this.timer);
    this.endWindow();
  }

  private endWindow(): void {
    for (const [address, { unlogged }] of this.counts) {
      if (unlogged > 0) this.summarize({ address, count: unlogged });
    }
    this.counts.clear();
  }
}
