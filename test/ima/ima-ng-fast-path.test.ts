import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { parseImaAsciiLine } from '../../lib/ima/ascii-list-parser.js';
import { compileRuntimePolicy } from '../../lib/ima/compiled-policy.js';
import { emptyRuntimePolicy, parseRuntimePolicy } from '../../lib/ima/runtime-policy.js';
import { verifyImaList, type VerifyImaListInput } from '../../lib/ima/verify-ima-list.js';
import { expectedRound, quoteOf } from './ima-ng-expected-round.js';

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
      const quoted = quoteOf(lines);
      for (const input of [{ policy: compiled, quotedPcr10: { bank: 'sha256' as const, value: quoted } }, {}, { policy: compiled, bootAggregates: ['00'.repeat(32)] }]) {
        const { viaText, viaEntries } = bothWays(lines, input);
        if (viaEntries !== undefined) {
          expect(viaText).to.deep.equal(viaEntries);
        }
      }
      for (const withPolicy of [undefined, compiled]) {
        expect(verifyImaList({ listText: `${lines.join('\n')}\n`, policy: withPolicy, quotedPcr10: { bank: 'sha256', value: quoted } })).to.deep.equal(expectedRound(lines, withPolicy, quoted));
      }
    });
  }

  it('a list of many chunks (the text is encoded a chunk of lines at a time), lines beyond ASCII and a changed one among them', () => {
    const lines = Array.from({ length: 600 }, (_unused, i) => (i % 97 === 5 ? good[3] : good[i % 2])?.line ?? '');
    lines[400] = imaNgLine('/usr/bin/a', 'tampered').line;
    const input = { policy: compiled, quotedPcr10: { bank: 'sha256' as const, value: quoteOf(lines) } };
    const { viaText, viaEntries } = bothWays(lines, input);
    expect(`${lines.join('\n')}\n`.length).to.be.greaterThan(4 * 16_384);
    expect(viaText).to.deep.equal(viaEntries);
    expect(viaText).to.deep.equal(expectedRound(lines, compiled, quoteOf(lines)));
    expect(viaText.failures.map((f) => f.line)).to.deep.equal([401]);
    // A line beyond ASCII and a refused one in each chunk, then one that does not parse.
    lines[401] = `${'é'.repeat(30)} ${lines[402] ?? ''}`;
    expect(verifyImaList({ listText: `${lines.join('\n')}\n`, policy: compiled, quotedPcr10: input.quotedPcr10 })).to.deep.equal(expectedRound(lines, compiled, input.quotedPcr10.value));
  });

  it('accepts the good list and refuses a changed digest with the full validator\'s failure', () => {
    const lines = good.map((g) => g.line);
    expect(bothWays(lines, { policy: compiled }).viaText.valid).to.equal(true);
    const bad = bothWays([...lines.slice(0, 1), imaNgLine('/usr/bin/b', 'tampered').line], { policy: compiled }).viaText;
    expect(bad.failures.map((f) => [f.line, f.eventId])).to.deep.equal([[2, 'ima.validation.ima-ng.runtime_policy_hash']]);
  });
});
