import { expect } from 'chai';
import { BoundedCache } from '../../lib/cache/bounded-cache.js';

describe('bounded cache', function () {
  it('keeps at most its capacity, dropping the least recently used entry (not the whole cache)', function () {
    const cache = new BoundedCache<string, number>(3);
    for (const [index, key] of ['a', 'b', 'c'].entries()) {
      cache.set(key, index);
    }
    expect(cache.get('a'), 'a hit makes a the most recently used').to.equal(0);
    cache.set('d', 3);
    expect(cache.has('b'), 'b, the least recently used, went').to.equal(false);
    expect([cache.has('a'), cache.has('c'), cache.has('d')]).to.deep.equal([true, true, true]);
    cache.set('e', 4);
    expect(cache.has('c'), 'c was next: has() is no use').to.equal(false);
    expect([cache.get('a'), cache.get('d'), cache.get('e')]).to.deep.equal([0, 3, 4]);
  });

  it('storing a key again replaces its value and makes it the newest', function () {
    const cache = new BoundedCache<string, number>(2);
    cache.set('a', 1);
    cache.set('b', 2);
    cache.set('a', 10);
    cache.set('c', 3);
    expect(cache.get('a')).to.equal(10);
    expect(cache.has('b'), 'b was the oldest once a was stored again').to.equal(false);
    expect(cache.get('c')).to.equal(3);
  });

  it('deletes one entry; a dropped or deleted key is simply absent', function () {
    const cache = new BoundedCache<string, number>(2);
    cache.set('a', 1);
    cache.delete('a');
    cache.delete('a');
    expect(cache.get('a')).to.equal(undefined);
    cache.set('b', 2);
    cache.set('c', 3);
    expect([cache.get('b'), cache.get('c')], 'the deleted entry freed its place').to.deep.equal([2, 3]);
  });

  it('with a weight budget, drops the least recently used until what is kept weighs no more than it; a value heavier than the budget is not kept', function () {
    const cache = new BoundedCache<string, string>(10, { weigh: (value) => value.length, budget: 6 });
    cache.set('a', 'aa');
    cache.set('b', 'bb');
    cache.set('c', 'cc');
    expect(cache.get('a')).to.equal('aa');
    cache.set('d', 'dd');
    expect(cache.has('b'), 'b, the least recently used, went').to.equal(false);
    expect(cache.weighedTotal).to.equal(6);
    cache.set('a', 'a');
    expect(cache.weighedTotal, 'a value stored again is weighed again, its old weight given back').to.equal(5);
    cache.delete('c');
    expect(cache.weighedTotal).to.equal(3);
    cache.set('e', 'eeeeeee');
    expect([cache.has('a'), cache.has('d'), cache.has('e'), cache.weighedTotal]).to.deep.equal([false, false, false, 0]);
  });

  it('refuses a capacity that is not a positive integer', function () {
    for (const capacity of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => new BoundedCache<string, number>(capacity), String(capacity)).to.throw(RangeError, 'positive integer');
    }
  });
});
