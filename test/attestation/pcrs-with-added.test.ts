import { expect } from 'chai';
import { PcrsWithAdded } from '../../lib/attestation/internal/pcrs-with-added.js';

/** Everything a reader of a PCR map can see, in the order it sees it. */
function observed(map: ReadonlyMap<number, Uint8Array>, probe: readonly number[]): unknown {
  const each: unknown[] = [];
  map.forEach((value, pcr, self) => each.push([pcr, value, self === map]));
  return {
    size: map.size,
    entries: [...map.entries()],
    iterated: [...map],
    keys: [...map.keys()],
    values: [...map.values()],
    each,
    got: probe.map((pcr) => [map.get(pcr), map.has(pcr)]),
  };
}

describe('PcrsWithAdded', () => {
  it('reads as the copy with the PCR set last, for every reader (the copy it replaced in reuseBootLog)', () => {
    const probe = [0, 1, 7, 10, 14, 23, 24, -1];
    for (const quoted of [[], [7], [14, 1, 10, 7], Array.from({ length: 23 }, (_, i) => 23 - i)]) {
      const base = new Map(quoted.map((pcr) => [pcr, Uint8Array.of(pcr, 0xaa)]));
      const pcr0 = Uint8Array.of(0, 0xbb);
      const copy = new Map(base).set(0, pcr0);
      const view = new PcrsWithAdded(base, 0, pcr0);
      expect(observed(view, probe)).to.deep.equal(observed(copy, probe));
    }
  });

  it('passes thisArg to forEach as Map does', () => {
    const context = { seen: 0 };
    new PcrsWithAdded(new Map([[3, Uint8Array.of(3)]]), 0, Uint8Array.of(0)).forEach(function (this: typeof context) {
      this.seen += 1;
    }, context);
    expect(context.seen).to.equal(2);
  });
});
