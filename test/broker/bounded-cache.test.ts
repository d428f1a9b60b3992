import { expect } from 'chai';
import { BoundedCache } from '../../lib/broker/bounded-cache.js';

describe('broker: bounded cache', function () {
  it('keeps at most its capacity, dropping the oldest stored entry (not the whole cache)', function () {
    const cache = new BoundedCache<string, number>(3);
    for (const [index, key] of ['a', 'b', 'c'].entries()) {
      cache.set(key, index);
    }
    expect(cache.get('a'), 'a hit does not make an entry newer').to.equal(0);
    cache.set('d', 3);
    expect(cache.has('a'), 'the oldest went').to.equal(false);
    expect([cache.get('b'), cache.get('c'), cache.get('d')]).to.deep.equal([1, 2, 3]);
    cache.set('e', 4);
    expect(cache.has('b')).to.equal(false);
    expect([cache.has('c'), cache.has('d'), cache.has('e')]).to.deep.equal([true, true, true]);
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
    expect(cache.delete('a')).to.equal(true);
    expect(cache.delete('a')).to.equal(false);
    expect(cache.get('a')).to.equal(undefined);
    cache.set('b', 2);
    cache.set('c', 3);
    expect([cache.get('b'), cache.get('c')], 'the deleted entry freed its place').to.deep.equal([2, 3]);
  });

  it('refuses a capacity that is not a positive integer', function () {
    for (const capacity of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => new BoundedCache<string, number>(capacity), String(capacity)).to.throw(RangeError, 'positive integer');
    }
  });
});
