import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { parseImaAsciiLine } from '../../lib/ima/ascii-list-parser.js';
import { compileRuntimePolicy } from '../../lib/ima/compiled-policy.js';
import { emptyRuntimePolicy, parseRuntimePolicy } from '../../lib/ima/runtime-policy.js';
import { verifyImaList, type VerifyImaListInput } from '../../lib/ima/verify-ima-list.js';
import { expectedRound, imaNgData, quoteOf, replayPcr10 } from './ima-ng-expected-round.js';
import { IMA_EVENTS } from '../../lib/ima/ima-failure.js';

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

  /**
   * The kernel extends every allocated bank, sha384 and sha512 too, with that bank's hash of the
   * template data; a quote in such a bank is replayed in it, on the fast path and off it alike.
   */
  for (const bank of ['sha384', 'sha512'] as const) {
    for (const logHash of ['sha1', bank] as const) {
      it(`a ${bank} quote over a ${logHash} log: replayed in the ${bank} bank, with and without the fast path`, () => {
        const policy = emptyRuntimePolicy();
        policy.ima.log_hash_alg = logHash;
        const digests = good.filter((g) => !g.path.startsWith('/tmp/'));
        for (const g of digests) policy.digests[g.path] = [g.digest];
        policy.excludes = ['/tmp/'];
        const logged = good.map((g) => {
          const data = imaNgData(Buffer.from(g.digest, 'hex'), g.path);
          return `10 ${createHash(logHash).update(data).digest('hex')} ima-ng sha256:${g.digest} ${g.path}`;
        });
        const violation = `10 ${'00'.repeat(createHash(logHash).digest().length)} ima-ng sha256:${'00'.repeat(32)} /var/log/opened-for-write`;
        const lines = [...logged.slice(0, 3), violation, ...logged.slice(3)];
        const entries = lines.map((line, i) => parseImaAsciiLine(line, i + 1));
        const values = replayPcr10(bank, entries);
        const compiled = compileRuntimePolicy(parseRuntimePolicy(policy));
        const { viaText, viaEntries } = bothWays(lines, { policy: compiled, quotedPcr10: { bank, value: values[values.length - 1] as string } });
        expect(viaText.failures).to.deep.equal([]);
        expect(viaText).to.deep.equal(viaEntries);
        expect(viaText.nextState.pcr10).to.deep.equal({ [bank]: values[values.length - 1] });
        expect(viaText.matchedEntries).to.equal(lines.length);
        // Continued from the state: a quote taken after line 2, then the rest.
        const first = verifyImaList({ listText: `${lines.join('\n')}\n`, policy: compiled, quotedPcr10: { bank, value: values[2] as string } });
        expect([first.valid, first.matchedEntries]).to.deep.equal([true, 2]);
        const rest = verifyImaList({ listText: `${lines.slice(2).join('\n')}\n`, policy: compiled, state: first.nextState, quotedPcr10: { bank, value: values[values.length - 1] as string } });
        expect([rest.valid, rest.matchedEntries]).to.deep.equal([true, lines.length - 2]);
        // A changed file digest (its logged hash recomputed to hide it) does not reach the quote.
        const forged = imaNgData(Buffer.alloc(32, 0xee), '/usr/bin/a');
        const tampered = lines.map((line, i) => (i === 0 ? `10 ${createHash(logHash).update(forged).digest('hex')} ima-ng sha256:${'ee'.repeat(32)} /usr/bin/a` : line));
        const bad = bothWays(tampered, { policy: compiled, quotedPcr10: { bank, value: values[values.length - 1] as string } });
        expect(bad.viaText).to.deep.equal(bad.viaEntries);
        expect(bad.viaText.failures.map((f) => f.eventId)).to.deep.equal([IMA_EVENTS.runtimePolicyHash, IMA_EVENTS.pcrMismatch]);
      });
    }
  }
});
