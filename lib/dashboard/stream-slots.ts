import type { Principal } from '../auth/roles.js';

interface Slot {
  /** Ends the stream holding this slot. */
  readonly evict: () => void;
}

/**
 * Counts the live-update streams open at once, in all and per holder, so that one tenant's tabs (or
 * one certificate's) cannot take every slot. While slots are free a holder takes up to
 * `maxPerHolder`; once all are taken, a holder with fewer than `fairShare` still gets one, by ending
 * the newest stream of the holder holding the most, when that holder holds more than `fairShare`.
 * So `maxOpen / fairShare` holders are always served; a holder at its share or above waits for a free
 * slot. A slot is released once, by the function `take` gave or by its eviction, whichever is first.
 */
export class StreamSlots {
  private open = 0;
  private readonly held = new Map<string, Slot[]>();

  constructor(
    private readonly maxOpen: number,
    private readonly maxPerHolder: number,
    private readonly fairShare: number,
  ) {}

  /** A release function when `principal`'s holder may open one more stream (`evict` ends it if its slot is taken back), else undefined. */
  take(principal: Principal, evict: () => void): (() => void) | undefined {
    const holder = holderOf(principal);
    const mine = this.held.get(holder) ?? [];
    if (mine.length >= this.maxPerHolder) return undefined;
    if (this.open >= this.maxOpen) {
      const victim = mine.length < this.fairShare ? this.newestAboveShare() : undefined;
      if (victim === undefined) return undefined;
      this.release(victim.holder, victim.slot);
      victim.slot.evict();
    }
    const slot: Slot = { evict };
    this.held.set(holder, [...(this.held.get(holder) ?? []), slot]);
    this.open += 1;
    return () => this.release(holder, slot);
  }

  /** The newest slot of the holder holding the most, when that is more than its fair share. */
  private newestAboveShare(): { holder: string; slot: Slot } | undefined {
    let most: [string, Slot[]] | undefined;
    for (const entry of this.held) if (entry[1].length > (most?.[1].length ?? this.fairShare)) most = entry;
    const slot = most?.[1].at(-1);
    return most === undefined || slot === undefined ? undefined : { holder: most[0], slot };
  }

  private release(holder: string, slot: Slot): void {
    const slots = this.held.get(holder) ?? [];
    const left = slots.filter((held) => held !== slot);
    if (left.length === slots.length) return;
    this.open -= 1;
    if (left.length === 0) this.held.delete(holder);
    else this.held.set(holder, left);
  }
}

/** A token's tenant (every token of it shares the tenant's slots), or one certificate. */
function holderOf(principal: Principal): string {
  return principal.kind === 'token' ? `tenant:${principal.tenant}` : `cert:${principal.subject}`;
}
