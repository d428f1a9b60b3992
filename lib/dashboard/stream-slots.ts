import type { Principal } from '../auth/roles.js';

/**
 * Counts the live-update streams open at once, in all and per holder, so that one tenant's tabs (or
 * one certificate's) cannot take every slot. A slot is released once, by the function `take` gave.
 */
export class StreamSlots {
  private open = 0;
  private readonly held = new Map<string, number>();

  constructor(
    private readonly maxOpen: number,
    private readonly maxPerHolder: number,
  ) {}

  /** A release function when `principal`'s holder may open one more stream, else undefined. */
  take(principal: Principal): (() => void) | undefined {
    const holder = holderOf(principal);
    const held = this.held.get(holder) ?? 0;
    if (this.open >= this.maxOpen || held >= this.maxPerHolder) return undefined;
    this.open += 1;
    this.held.set(holder, held + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.open -= 1;
      const left = (this.held.get(holder) ?? 1) - 1;
      if (left === 0) this.held.delete(holder);
      else this.held.set(holder, left);
    };
  }
}

/** A token's tenant (every token of it shares the tenant's slots), or one certificate. */
function holderOf(principal: Principal): string {
  return principal.kind === 'token' ? `tenant:${principal.tenant}` : `cert:${principal.subject}`;
}
