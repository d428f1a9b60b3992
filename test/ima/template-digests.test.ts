import { hash } from 'node:crypto';
import { expect } from 'chai';
import { imaHashByName, type PcrBank } from '../../lib/ima/hash-algorithms.js';
import { Pcr10Replay } from '../../lib/ima/internal/pcr10-replay.js';
import { TemplateDigests } from '../../lib/ima/internal/template-digests.js';

const DATA = Buffer.from('template data of one line');

function digestsOf(logHash: string, banks: readonly PcrBank[], wantSha256: boolean, withLogged = true): { sha1: string; sha256: string; logged: string } {
  const algorithm = imaHashByName(logHash);
  if (algorithm === undefined) throw new Error(logHash);
  const digests = new TemplateDigests(algorithm, banks, wantSha256);
  digests.compute(DATA, withLogged);
  return { sha1: digests.sha1, sha256: digests.sha256, logged: digests.logged };
}

/** The one rule the ima-ng fast path and the full validator share: which hashes of a line's template data a round takes. */
describe('IMA template digests: the hashes a line is held to and extended with', function () {
  const sha1 = hash('sha1', DATA, 'binary');
  const sha256 = hash('sha256', DATA, 'binary');

  it('holds a line to the log hash and hashes each replayed bank, and no other', function () {
    expect(digestsOf('sha1', ['sha256'], false)).to.deep.equal({ sha1, sha256, logged: sha1 });
    expect(digestsOf('sha1', ['sha1'], false)).to.deep.equal({ sha1, sha256: '', logged: sha1 });
    expect(digestsOf('sha256', ['sha1'], false)).to.deep.equal({ sha1, sha256, logged: sha256 });
    expect(digestsOf('sha256', ['sha256'], false)).to.deep.equal({ sha1: '', sha256, logged: sha256 });
    expect(digestsOf('sha1', ['sha1', 'sha256'], false)).to.deep.equal({ sha1, sha256, logged: sha1 });
  });

  it('a line the quote binds: the log hash only when it is a replayed bank\'s, no hash of its own', function () {
    expect(digestsOf('sha1', ['sha256'], false, false)).to.deep.equal({ sha1: '', sha256, logged: '' });
    expect(digestsOf('sha1', ['sha256'], true, false)).to.deep.equal({ sha1: '', sha256, logged: '' });
    expect(digestsOf('sha1', ['sha1'], false, false)).to.deep.equal({ sha1, sha256: '', logged: sha1 });
    expect(digestsOf('sha256', ['sha1'], false, false)).to.deep.equal({ sha1, sha256: '', logged: '' });
    expect(digestsOf('sha256', ['sha256'], false, false)).to.deep.equal({ sha1: '', sha256, logged: sha256 });
    expect(digestsOf('sha384', ['sha256'], false, false)).to.deep.equal({ sha1: '', sha256, logged: '' });
  });

  it('adds SHA-256 when asked (the fast path looks lines up in the policy by it)', function () {
    expect(digestsOf('sha1', ['sha1'], true)).to.deep.equal({ sha1, sha256, logged: sha1 });
  });

  it('copies SHA-256 into the second half of sha256ExtendInput (which the replay and the policy index read), line after line', function () {
    const algorithm = imaHashByName('sha1');
    if (algorithm === undefined) throw new Error('sha1');
    const digests = new TemplateDigests(algorithm, ['sha256'], false);
    for (const data of [DATA, Buffer.from('another line')]) {
      digests.compute(data, true);
      expect(Buffer.from(digests.sha256ExtendInput.subarray(32))).to.deep.equal(hash('sha256', data, 'buffer'));
      expect(Buffer.from(digests.sha256Words.buffer, digests.sha256Words.byteOffset, digests.sha256Words.byteLength)).to.deep.equal(hash('sha256', data, 'buffer'));
    }
  });

  it('the sha256 extend in place writes the PCR into the first half only: the digest half the policy index reads is left as computed', function () {
    const algorithm = imaHashByName('sha1');
    if (algorithm === undefined) throw new Error('sha1');
    const digests = new TemplateDigests(algorithm, ['sha1', 'sha256'], false);
    const replay = new Pcr10Replay({ sha1: '00'.repeat(20), sha256: '00'.repeat(32) }, ['sha1', 'sha256']);
    let pcr = Buffer.alloc(32);
    for (const data of [DATA, Buffer.from('another line'), Buffer.from('a third line')]) {
      digests.compute(data, true);
      replay.extend(digests);
      const digest = hash('sha256', data, 'buffer');
      pcr = hash('sha256', Buffer.concat([pcr, digest]), 'buffer');
      expect(Buffer.from(digests.sha256Words.buffer, digests.sha256Words.byteOffset, digests.sha256Words.byteLength)).to.deep.equal(digest);
      expect(replay.snapshot().sha256).to.equal(pcr.toString('hex'));
    }
  });

  it('holds a line to a log hash that is no replayed bank', function () {
    expect(digestsOf('sha384', ['sha256'], false)).to.deep.equal({ sha1: '', sha256, logged: hash('sha384', DATA, 'binary') });
  });
});
