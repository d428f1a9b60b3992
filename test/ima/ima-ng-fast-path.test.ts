import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { ImaParseError } from '../../lib/bytes/parse-errors.js';
import { parseImaAsciiLine } from '../../lib/ima/ascii-list-parser.js';
import { compileRuntimePolicy } from '../../lib/ima/compiled-policy.js';
import { imaHashByName } from '../../lib/ima/hash-algorithms.js';
import { IMA_EVENTS } from '../../lib/ima/ima-failure.js';
import { ImaNgFastPath } from '../../lib/ima/internal/ima-ng-fast-path.js';
import { Pcr10Replay } from '../../lib/ima/internal/pcr10-replay.js';
import { emptyRuntimePolicy, parseRuntimePolicy } from '../../lib/ima/runtime-policy.js';
import { verifyImaList, type VerifyImaListInput } from '../../lib/ima/verify-ima-list.js';

/** A valid ima-ng line for `path` with a sha256 file digest of `content`, and its digest hex. */
function imaNgLine(path: string, content: string): { line: string; digest: string } {
  const digest = createHash('sha256').update(content).digest();
  const name = Buffer.from(path, 'utf8');
  const u32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(n);
    return b;
  };
  const data = Buffer.concat([u32(40), Buffer.from('sha256:\0', 'latin1'), digest, u32(name.length + 1), name, Buffer.alloc(1)]);
  return { line: `10 ${createHash('sha1').update(data).digest('hex')} ima-ng sha256:${digest.toString('hex')} ${path}`, digest: digest.toString('hex') };
}

/** The same round through the ASCII text (fast path first) and through parsed entries (full validator only). */
function bothWays(lines: readonly string[], input: Omit<VerifyImaListInput, 'listText' | 'entries'>) {
  const text = `${lines.join('\n')}\n`;
  const viaText = verifyImaList({ ...input, listText: text });
  const parsed = lines.map((line, i) => {
    try {
      return parseImaAsciiLine(line, i + 1);
    } catch {
      return undefined;
    }
  });
  return { viaText, parsed, viaEntries: parsed.every((e) => e !== undefined) ? verifyImaList({ ...input, entries: parsed as NonNullable<(typeof parsed)[number]>[] }) : undefined };
}

describe('IMA ima-ng fast path: same outcome as the full parser and validator', () => {
  const good = ['/usr/bin/a', '/usr/bin/b', '/tmp/x', '/usr/lib/é-ü', 'boot_aggregate'].map((p) => ({ path: p, ...imaNgLine(p, `content of ${p}`) }));
  const policy = emptyRuntimePolicy();
  for (const g of good) {
    if (!g.path.startsWith('/tmp/')) {
      policy.digests[g.path] = [g.digest];
    }
  }
  policy.excludes = ['/tmp/'];
  const compiled = compileRuntimePolicy(parseRuntimePolicy(policy));

  const variants: Array<[string, (line: string) => string]> = [
    ['unchanged', (l) => l],
    ['uppercase file digest', (l) => l.replace(/sha256:([0-9a-f]+)/, (_m, h: string) => `sha256:${h.toUpperCase()}`)],
    ['uppercase template hash', (l) => l.replace(/^10 ([0-9a-f]+)/, (_m, h: string) => `10 ${h.toUpperCase()}`)],
    ['wrong template hash', (l) => l.replace(/^10 ./, '10 f')],
    ['violation (all-zero hash)', (l) => l.replace(/^10 [0-9a-f]+/, `10 ${'0'.repeat(40)}`)],
    ['other PCR', (l) => l.replace(/^10 /, '11 ')],
    ['digest not in the policy', (l) => l.replace(/sha256:./, 'sha256:0')],
    ['space in the path', (l) => `${l} x`],
    ['sha1 file digest', (l) => l.replace(/sha256:[0-9a-f]+/, `sha1:${'ab'.repeat(20)}`)],
  ];

  for (const [name, change] of variants) {
    it(`${name}: failures, next state and PCR 10 agree with and without the fast path`, () => {
      const lines = good.map((g, i) => (i === 1 ? change(g.line) : g.line));
      const quoted = verifyImaList({ listText: `${lines.join('\n')}\n` }).pcr10.sha256!;
      for (const input of [{ policy: compiled, quotedPcr10: { bank: 'sha256' as const, value: quoted } }, {}, { policy: compiled, bootAggregates: ['00'.repeat(32)] }]) {
        const { viaText, viaEntries } = bothWays(lines, input);
        if (viaEntries !== undefined) {
          expect(viaText).to.deep.equal(viaEntries);
        }
      }
    });
  }

  it('a list of many chunks (the text is encoded a chunk of lines at a time), lines beyond ASCII and a changed one among them', () => {
    const lines = Array.from({ length: 600 }, (_unused, i) => (i % 97 === 5 ? good[3] : good[i % 2])?.line ?? '');
    lines[400] = imaNgLine('/usr/bin/a', 'tampered').line;
    const input = { policy: compiled, quotedPcr10: { bank: 'sha256' as const, value: verifyImaList({ listText: `${lines.join('\n')}\n` }).pcr10.sha256 ?? '' } };
    const { viaText, viaEntries } = bothWays(lines, input);
    expect(`${lines.join('\n')}\n`.length).to.be.greaterThan(4 * 16_384);
    expect(viaText).to.deep.equal(viaEntries);
    expect(viaText.failures.map((f) => f.line)).to.deep.equal([401]);
  });

  it('accepts the good list and refuses a changed digest with the full validator\'s failure', () => {
    const lines = good.map((g) => g.line);
    expect(bothWays(lines, { policy: compiled }).viaText.valid).to.equal(true);
    const bad = bothWays([...lines.slice(0, 1), imaNgLine('/usr/bin/b', 'tampered').line], { policy: compiled }).viaText;
    expect(bad.failures.map((f) => [f.line, f.eventId])).to.deep.equal([[2, 'ima.validation.ima-ng.runtime_policy_hash']]);
  });
});

/**
 * Hostile spellings of one line, each put between two good lines: the round over the text (fast
 * path first) must give what the full parser and validator give — the same result as the parsed
 * entries when the line parses, the parser's own failure when it does not.
 */
describe('IMA ima-ng fast path on hostile lines: agrees with the full parser', () => {
  const paths = ['/usr/bin/a', '/usr/bin/b', '/usr/bin/c'];
  const good = paths.map((p) => ({ path: p, ...imaNgLine(p, `content of ${p}`) }));
  const [first, middle, last] = good as [(typeof good)[number], (typeof good)[number], (typeof good)[number]];
  const policy = emptyRuntimePolicy();
  for (const g of good) {
    policy.digests[g.path] = [g.digest];
  }
  const weirdPaths = ['/usr/bin/é', '/usr/bin/\ud800', '/usr/bin/\u0120x', '/usr/bin/\u0161', '/usr/bin/\u{1f600}', '/usr/bin/a b', '/usr/bin/a\tb', '/usr/bin/a\r', '/usr/bin/a\0b', '/' + 'x'.repeat(8191), '/' + 'x'.repeat(8192), '/' + 'y'.repeat(20_000)];
  for (const path of weirdPaths) {
    const line = imaNgLine(path, 'weird');
    policy.digests[path] = [line.digest];
  }
  const compiled = compileRuntimePolicy(parseRuntimePolicy(policy));
  const line = middle.line;
  const hexAt = line.indexOf('sha256:') + 'sha256:'.length;
  const hostile: Array<[string, string]> = [
    ...['g', 'G', 'z', ' ', '\0', '\u0130', '\u0131', '\u0100', '\u0661', '\uff10'].flatMap((c): Array<[string, string]> => [
      [`file digest with ${JSON.stringify(c)}`, line.slice(0, hexAt + 10) + c + line.slice(hexAt + 11)],
      [`template hash with ${JSON.stringify(c)}`, line.slice(0, 5) + c + line.slice(6)],
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
    ...weirdPaths.map((path): [string, string] => [`path ${JSON.stringify(path.slice(0, 20))} (${path.length} chars)`, imaNgLine(path, 'weird').line]),
    // Hashed and listed as its first 8192 characters: only the whole path may be hashed.
    ['path of 8193 chars, template hash of its first 8192', `${imaNgLine('/' + 'x'.repeat(8191), 'weird').line}x`],
    ...Array.from({ length: line.length }, (_unused, n): [string, string] => [`truncated to ${n} chars`, line.slice(0, n)]),
    // A character whose low 7 or 8 bits spell the original one: a decoder that masks char codes
    // would read the good line, hash and all, where the full parser reads another one.
    ...Array.from({ length: line.length }, (_unused, n): Array<[string, string]> =>
      [0x80, 0x100, 0x10000].map((alias) => [`char ${n} aliased by +0x${alias.toString(16)}`, line.slice(0, n) + String.fromCodePoint(line.charCodeAt(n) + alias) + line.slice(n + 1)]),
    ).flat(),
  ];
  const quoteFor = (lines: readonly string[]) => verifyImaList({ listText: `${lines.join('\n')}\n` }).pcr10.sha256 ?? '';

  for (const [name, text] of hostile) {
    it(name, () => {
      // Lines after the hostile one, taken by the fast path or not: a line beyond ASCII is longer
      // in bytes than in chars.
      const lines = [first.line, text, last.line, text, middle.line];
      const input = { policy: compiled, quotedPcr10: { bank: 'sha256' as const, value: quoteFor(lines) } };
      const { viaText, viaEntries } = bothWays(lines, input);
      if (viaEntries !== undefined) {
        expect(viaText).to.deep.equal(viaEntries);
        return;
      }
      expect(viaText.valid).to.equal(false);
      for (const at of [2, 4]) {
        let refusal: ImaParseError | undefined;
        try {
          parseImaAsciiLine(text, at);
        } catch (error) {
          refusal = error as ImaParseError;
        }
        expect(refusal).to.be.instanceOf(ImaParseError);
        expect(viaText.failures).to.deep.include({ line: at, path: '', eventId: IMA_EVENTS.parserEntry, context: { message: refusal?.message } });
      }
      expect(viaText.entriesChecked).to.equal(lines.length);
    });
  }

  it('takes the good lines itself (so the cases above go through it)', () => {
    const sha1 = imaHashByName('sha1');
    if (sha1 === undefined) throw new Error('sha1');
    const fast = new ImaNgFastPath(sha1, ['sha256'], compiled, false);
    const replay = new Pcr10Replay({ sha256: '00'.repeat(32) }, ['sha256']);
    for (const g of good) {
      expect(fast.accept(Buffer.from(g.line), 0, replay)).to.equal(g.line.length);
    }
    expect(replay.snapshot()).to.deep.equal({ sha256: quoteFor(good.map((g) => g.line)) });
  });
});
