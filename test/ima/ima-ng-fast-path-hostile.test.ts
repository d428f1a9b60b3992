import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { compileRuntimePolicy } from '../../lib/ima/compiled-policy.js';
import { imaHashByName } from '../../lib/ima/hash-algorithms.js';
import { IMA_EVENTS } from '../../lib/ima/ima-failure.js';
import { ImaNgFastPath } from '../../lib/ima/internal/ima-ng-fast-path.js';
import { Pcr10Replay } from '../../lib/ima/internal/pcr10-replay.js';
import { emptyRuntimePolicy, parseRuntimePolicy } from '../../lib/ima/runtime-policy.js';
import { verifyImaList } from '../../lib/ima/verify-ima-list.js';
import { expectedRound, imaNgLineOf, quoteOf, tamperedTemplateHash } from './ima-ng-expected-round.js';

const fileDigest = (content: string) => createHash('sha256').update(content).digest();
const HEX_ALIASES = ['é', '\u0100', '\u07ff'];

/** Where `hex` has the byte 0x00, as an offset of its digit pair (-1 for none). */
function zeroPairAt(hex: string): number {
  for (let i = 0; i < hex.length; i += 2) {
    if (hex.slice(i, i + 2) === '00') {
      return i;
    }
  }
  return -1;
}

/**
 * A line whose file digest and template hash both hold a 0x00 byte: a two-byte UTF-8 character in
 * place of its `00` keeps every byte position, and a hex lookup that does not refuse bytes beyond
 * ASCII may read it as 0x00.
 */
function lineWithZeroBytes(path: string): { line: string; digest: Buffer; fileZero: number; hashZero: number } {
  for (let n = 0; ; n++) {
    const digest = fileDigest(`content ${n} of ${path}`);
    digest[7] = 0;
    const line = imaNgLineOf(digest, path);
    const hashZero = zeroPairAt(line.slice(3, 43));
    if (hashZero >= 0) {
      return { line, digest, fileZero: line.indexOf('sha256:') + 7 + 14, hashZero: 3 + hashZero };
    }
  }
}

/**
 * Hostile spellings of one line, each followed by a line with a tampered template hash (ASCII,
 * refused by the fast path where it is held to its logged hash: the byte and char positions must
 * still agree after the hostile line) or by a violation (refused by the fast path everywhere),
 * checked against the full parser and validator and an independent replay: every field of the
 * result, with no policy, with a policy whose excludes take every odd path, with and without a quote.
 */
describe('IMA ima-ng fast path on hostile lines: the whole result equals the full parser\'s', () => {
  const paths = ['/usr/bin/a', '/usr/bin/b', '/usr/bin/c'];
  const good = paths.map((p) => ({ path: p, digest: fileDigest(`content of ${p}`), line: '' }));
  for (const g of good) {
    g.line = imaNgLineOf(g.digest, g.path);
  }
  const [first, , last] = good as [(typeof good)[number], (typeof good)[number], (typeof good)[number]];
  const middle = lineWithZeroBytes('/usr/bin/b');
  const policy = emptyRuntimePolicy();
  for (const g of [...good, { path: middle.line.slice(middle.line.lastIndexOf(' ') + 1), digest: middle.digest }]) {
    (policy.digests[g.path] ??= []).push(g.digest.toString('hex'));
  }
  // Any path with a character outside printable ASCII (or a space), and the long ones.
  policy.excludes = ['.*[^!-~]', '/[xy]+$'];
  const compiled = compileRuntimePolicy(parseRuntimePolicy(policy));

  const weirdPaths = ['/usr/bin/é', '/usr/bin/\ud800', '/usr/bin/\u0120x', '/usr/bin/\u0161', '/usr/bin/\u{1f600}', '/usr/bin/a b', '/usr/bin/a\tb', '/usr/bin/a\r', '/usr/bin/a\0b', '/' + 'x'.repeat(8191), '/' + 'x'.repeat(8192), '/' + 'y'.repeat(20_000)];
  const line = middle.line;
  const hexAt = line.indexOf('sha256:') + 'sha256:'.length;
  const hostile: Array<[string, string]> = [
    ...['g', 'G', 'z', ' ', '\0', '\u0130', '\u0131', '\u0100', '\u0661', '\uff10'].flatMap((c): Array<[string, string]> => [
      [`file digest with ${JSON.stringify(c)}`, line.slice(0, hexAt + 10) + c + line.slice(hexAt + 11)],
      [`template hash with ${JSON.stringify(c)}`, line.slice(0, 5) + c + line.slice(6)],
    ]),
    // One two-byte character for two hex digits: the line keeps its length in bytes.
    ...HEX_ALIASES.flatMap((c): Array<[string, string]> => [
      [`file digest with ${JSON.stringify(c)} for a 00`, line.slice(0, middle.fileZero) + c + line.slice(middle.fileZero + 2)],
      [`template hash with ${JSON.stringify(c)} for a 00`, line.slice(0, middle.hashZero) + c + line.slice(middle.hashZero + 2)],
      [`file digest with ${JSON.stringify(c)} for its first pair`, line.slice(0, hexAt) + c + line.slice(hexAt + 2)],
    ]),
    ['mixed-case file digest', line.slice(0, hexAt) + line.slice(hexAt, hexAt + 32).toUpperCase() + line.slice(hexAt + 32)],
    ['uppercase template hash', line.slice(0, 3) + line.slice(3, 43).toUpperCase() + line.slice(43)],
    ['short file digest', line.slice(0, hexAt) + line.slice(hexAt + 2)],
    ['long file digest', line.slice(0, hexAt) + 'ab' + line.slice(hexAt)],
    ['double space', line.replace(' ima-ng', '  ima-ng')],
    ['PCR 010', `0${line}`],
    ['template ima-ngx', line.replace('ima-ng', 'ima-ngx')],
    ['algorithm SHA256', line.replace('sha256:', 'SHA256:')],
    ['empty path', line.slice(0, line.lastIndexOf(' ') + 1)],
    ['trailing space', `${line} `],
    ...weirdPaths.map((path): [string, string] => [`path ${JSON.stringify(path.slice(0, 20))} (${path.length} chars)`, imaNgLineOf(fileDigest('weird'), path)]),
    // Hashed and listed as its first 8192 characters: only the whole path may be hashed.
    ['path of 8193 chars, template hash of its first 8192', `${imaNgLineOf(fileDigest('weird'), '/' + 'x'.repeat(8191))}x`],
    ...Array.from({ length: line.length }, (_unused, n): [string, string] => [`truncated to ${n} chars`, line.slice(0, n)]),
    // A character whose low 7 or 8 bits spell the original one: a decoder that masks char codes
    // would read the good line, hash and all, where the full parser reads another one.
    ...Array.from({ length: line.length }, (_unused, n): Array<[string, string]> =>
      [0x80, 0x100, 0x10000].map((alias) => [`char ${n} aliased by +0x${alias.toString(16)}`, line.slice(0, n) + String.fromCodePoint(line.charCodeAt(n) + alias) + line.slice(n + 1)]),
    ).flat(),
  ];

  const check = (lines: readonly string[]) => {
    const text = `${lines.join('\n')}\n`;
    const quote = quoteOf(lines);
    for (const withPolicy of [undefined, compiled]) {
      expect(verifyImaList({ listText: text, policy: withPolicy, quotedPcr10: { bank: 'sha256', value: quote } })).to.deep.equal(expectedRound(lines, withPolicy, quote));
      expect(verifyImaList({ listText: text, policy: withPolicy })).to.deep.equal(expectedRound(lines, withPolicy, undefined));
    }
  };

  for (const [name, text] of hostile) {
    it(name, () => {
      check([first.line, text, tamperedTemplateHash(middle.line), text, tamperedTemplateHash(first.line), last.line]);
      // A violation, refused by the fast path whether the line is held to its logged hash or not.
      check([first.line, text, `10 ${'0'.repeat(40)}${middle.line.slice(43)}`, last.line]);
      check([first.line, text, last.line, text, middle.line]);
    });
  }

  it('no policy: a path whose extra UTF-8 bytes are the next line\'s length + 1, then a tampered line, then a good one', () => {
    const tampered = tamperedTemplateHash(first.line);
    const lines = [imaNgLineOf(fileDigest('wide'), `/${'é'.repeat(tampered.length + 1)}`), tampered, last.line];
    // Under the quote the tampered line is bound and not held to its logged hash; without one it is.
    const quoted = verifyImaList({ listText: `${lines.join('\n')}\n`, quotedPcr10: { bank: 'sha256', value: quoteOf(lines) } });
    expect(quoted).to.deep.equal(expectedRound(lines, undefined, quoteOf(lines)));
    expect(quoted.valid).to.equal(true);
    expect(quoted.entriesChecked).to.equal(3);
    const unquoted = verifyImaList({ listText: `${lines.join('\n')}\n` });
    expect(unquoted).to.deep.equal(expectedRound(lines, undefined, undefined));
    expect(unquoted.failures.map((f) => [f.line, f.eventId])).to.deep.equal([[2, IMA_EVENTS.imaHash]]);
    expect(unquoted.entriesChecked).to.equal(3);
  });

  for (const [where, at] of [['file digest', middle.fileZero], ['template hash', middle.hashZero]] as const) {
    it(`a two-byte character for the 00 of the ${where}, quote from the real line: parser error and PCR mismatch`, () => {
      const lines = [first.line, line.slice(0, at) + 'é' + line.slice(at + 2), last.line];
      const quote = quoteOf([first.line, line, last.line]);
      for (const withPolicy of [undefined, compiled]) {
        const result = verifyImaList({ listText: `${lines.join('\n')}\n`, policy: withPolicy, quotedPcr10: { bank: 'sha256', value: quote } });
        expect(result).to.deep.equal(expectedRound(lines, withPolicy, quote));
        expect(result.failures.map((f) => [f.line, f.eventId])).to.deep.equal([[2, IMA_EVENTS.parserEntry], [0, IMA_EVENTS.pcrMismatch]]);
      }
    });
  }

  it('a refused line whose tail after its multi-byte characters spells a listed line is one line', () => {
    const refused = `${'é'.repeat(last.line.length + 1)} ${last.line}`;
    const lines = [first.line, refused, last.line, good[1]?.line ?? ''];
    for (const withPolicy of [undefined, compiled]) {
      const result = verifyImaList({ listText: `${lines.join('\n')}\n`, policy: withPolicy, quotedPcr10: { bank: 'sha256', value: quoteOf(lines) } });
      expect(result).to.deep.equal(expectedRound(lines, withPolicy, quoteOf(lines)));
      expect(result.entriesChecked).to.equal(4);
      expect(result.failures.map((f) => [f.line, f.eventId])).to.deep.equal([[2, IMA_EVENTS.parserEntry]]);
    }
  });

  it('the full result of a good list: valid, every line committed, PCR 10 of an independent replay', () => {
    const lines = [first.line, middle.line, last.line];
    const quote = quoteOf(lines);
    const result = verifyImaList({ listText: `${lines.join('\n')}\n`, policy: compiled, quotedPcr10: { bank: 'sha256', value: quote } });
    expect(result).to.deep.equal(expectedRound(lines, compiled, quote));
    expect(result.nextState).to.deep.equal({ nextEntry: 3, pcr10: { sha256: quote }, learnedKeyrings: {}, lagEntries: 0 });
  });

  it('takes the good lines itself (so the cases above go through it)', () => {
    const sha1 = imaHashByName('sha1');
    if (sha1 === undefined) throw new Error('sha1');
    const fast = new ImaNgFastPath(sha1, ['sha256'], compiled, false);
    const replay = new Pcr10Replay({ sha256: '00'.repeat(32) }, ['sha256']);
    const lines = [first.line, middle.line, last.line];
    for (const l of lines) {
      expect(fast.accept(Buffer.from(l), 0, replay, true)).to.equal(l.length);
    }
    expect(replay.snapshot()).to.deep.equal({ sha256: quoteOf(lines) });
  });

  it('not holding a line to its logged hash, it takes a tampered hash but still refuses one that is not hex or all zeros', () => {
    const sha1 = imaHashByName('sha1');
    if (sha1 === undefined) throw new Error('sha1');
    const fast = new ImaNgFastPath(sha1, ['sha256'], compiled, false);
    const replay = new Pcr10Replay({ sha256: '00'.repeat(32) }, ['sha256']);
    const tampered = tamperedTemplateHash(first.line);
    expect(fast.accept(Buffer.from(tampered), 0, replay, true)).to.equal(-1);
    expect(fast.accept(Buffer.from(tampered), 0, replay, false)).to.equal(tampered.length);
    for (const refused of [`10 ${'0'.repeat(40)}${first.line.slice(43)}`, `10 ${'g'}${first.line.slice(4)}`, `10 ${'G'}${first.line.slice(4)}`]) {
      expect(fast.accept(Buffer.from(refused), 0, replay, false)).to.equal(-1);
    }
    expect(replay.snapshot()).to.deep.equal({ sha256: quoteOf([first.line]) });
  });
});
