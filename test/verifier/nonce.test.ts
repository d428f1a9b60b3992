import { expect } from 'chai';
import { freshNonce, NONCE_LENGTH } from '../../lib/verifier/nonce.js';

describe('freshNonce', () => {
  it('draws Keylime-length nonces of letters and digits, never the same twice', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 2000; i += 1) {
      const nonce = freshNonce();
      expect(nonce).to.match(/^[A-Za-z0-9]+$/);
      expect(nonce).to.have.length(NONCE_LENGTH);
      seen.add(nonce);
    }
    expect(seen.size).to.equal(2000);
    expect(freshNonce(7)).to.have.length(7);
  });

  it('uses every character about equally often (no modulo bias)', () => {
    const counts = new Map<string, number>();
    const draws = 62 * 2000;
    let text = '';
    while (text.length < draws) text += freshNonce(1000);
    for (const char of text.slice(0, draws)) counts.set(char, (counts.get(char) ?? 0) + 1);
    expect(counts.size).to.equal(62);
    // Chi-square with 61 degrees of freedom: above 120 happens by chance about once in 100,000 runs.
    const chiSquare = [...counts.values()].reduce((sum, count) => sum + (count - 2000) ** 2 / 2000, 0);
    expect(chiSquare).to.be.below(120);
  });
});
