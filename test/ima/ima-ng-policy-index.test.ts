import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { parseImaAsciiLine } from '../../lib/ima/ascii-list-parser.js';
import { compileRuntimePolicy } from '../../lib/ima/compiled-policy.js';
import { IMA_EVENTS } from '../../lib/ima/ima-failure.js';
import { emptyRuntimePolicy, parseRuntimePolicy } from '../../lib/ima/runtime-policy.js';
import { verifyImaList } from '../../lib/ima/verify-ima-list.js';

/**
 * The fast path finds a listed ima-ng line by its template data's SHA-256 (ImaNgPolicyIndex); these
 * cases check that it accepts exactly what the full validator accepts, through the whole replay.
 */
function u32(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(value);
  return b;
}

/** A valid ima-ng line for `path` with a file digest `digest` of algorithm `algorithm`. */
function line(path: string, algorithm: 'sha1' | 'sha256', digest: Buffer): string {
  const name = Buffer.from(path, 'utf8');
  const field = Buffer.from(`${algorithm}:\0`, 'latin1');
  const data = Buffer.concat([u32(field.length + digest.length), field, digest, u32(name.length + 1), name, Buffer.alloc(1)]);
  return `10 ${createHash('sha1').update(data).digest('hex')} ima-ng ${algorithm}:${digest.toString('hex')} ${path}`;
}

function digestOf(content: string, algorithm: 'sha1' | 'sha256' = 'sha256'): Buffer {
  return createHash(algorithm).update(content).digest();
}

/** Verifies `lines` as text (fast path first) and as parsed entries (full validator only); both must agree. */
function verifyBothWays(lines: readonly string[], digests: Record<string, string[]>) {
  const policy = emptyRuntimePolicy();
  policy.digests = digests;
  policy.excludes = ['/tmp/'];
  const compiled = compileRuntimePolicy(parseRuntimePolicy(policy));
  const viaText = verifyImaList({ listText: `${lines.join('\n')}\n`, policy: compiled });
  const viaEntries = verifyImaList({ entries: lines.map((l, i) => parseImaAsciiLine(l, i + 1)), policy: compiled });
  expect(viaText).to.deep.equal(viaEntries);
  return viaText;
}

describe('IMA ima-ng policy index: the fast path accepts what the policy lists, nothing else', () => {
  const a = digestOf('a');
  const b = digestOf('b');

  it('accepts listed sha256 and sha1 file digests, and a path listed with several digests', () => {
    const sha1 = digestOf('c', 'sha1');
    const result = verifyBothWays(
      [line('/usr/bin/a', 'sha256', a), line('/usr/bin/c', 'sha1', sha1), line('/usr/bin/b', 'sha256', b)],
      { '/usr/bin/a': [a.toString('hex')], '/usr/bin/c': [sha1.toString('hex')], '/usr/bin/b': [a.toString('hex'), b.toString('hex')] },
    );
    expect(result.valid).to.equal(true);
  });

  it('refuses a digest listed for another path, and a path listed with another digest', () => {
    const result = verifyBothWays([line('/usr/bin/a', 'sha256', b), line('/usr/bin/b', 'sha256', a)], {
      '/usr/bin/a': [a.toString('hex')],
      '/usr/bin/b': [b.toString('hex')],
    });
    expect(result.failures.map((f) => [f.line, f.eventId])).to.deep.equal([
      [1, IMA_EVENTS.runtimePolicyHash],
      [2, IMA_EVENTS.runtimePolicyHash],
    ]);
  });

  it('refuses a sha1 file digest whose hex is listed only as the start of a longer digest', () => {
    const short = a.subarray(0, 20);
    const result = verifyBothWays([line('/usr/bin/a', 'sha1', short)], { '/usr/bin/a': [a.toString('hex')] });
    expect(result.failures.map((f) => f.eventId)).to.deep.equal([IMA_EVENTS.runtimePolicyHash]);
  });

  it('non-ASCII paths (left to the full parser): a listed one passes, a different lone surrogate (same UTF-8 bytes) fails', () => {
    expect(verifyBothWays([line('/usr/lib/é-ü', 'sha256', a)], { '/usr/lib/é-ü': [a.toString('hex')] }).valid).to.equal(true);
    const result = verifyBothWays([line('/x\ud800', 'sha256', a)], { '/x\ud801': [a.toString('hex')] });
    expect(result.failures.map((f) => f.eventId)).to.deep.equal([IMA_EVENTS.notInAllowlist]);
  });

  it('accepts an excluded path whatever its digest, and refuses an unlisted one', () => {
    const result = verifyBothWays([line('/tmp/x', 'sha256', a), line('/usr/bin/z', 'sha256', a)], { '/usr/bin/a': [a.toString('hex')] });
    expect(result.failures.map((f) => [f.line, f.eventId])).to.deep.equal([[2, IMA_EVENTS.notInAllowlist]]);
  });

  it('gives the same outcome for a path too long for the fast path, listed or not', () => {
    const long = `/${'x'.repeat(10_000)}`;
    expect(verifyBothWays([line(long, 'sha256', a)], { [long]: [a.toString('hex')] }).valid).to.equal(true);
    expect(verifyBothWays([line(long, 'sha256', a)], { [long]: [b.toString('hex')] }).failures.map((f) => f.eventId)).to.deep.equal([IMA_EVENTS.runtimePolicyHash]);
  });
});
