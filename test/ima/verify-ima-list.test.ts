import { createHash } from 'node:crypto';
import { expect } from 'chai';
import { parseImaAsciiList, splitImaAsciiLines } from '../../lib/ima/ascii-list-parser.js';
import { compileRuntimePolicy } from '../../lib/ima/compiled-policy.js';
import { formatImaAsciiLine } from '../../lib/ima/internal/ima-entry.js';
import { IMA_EVENTS } from '../../lib/ima/ima-failure.js';
import { emptyRuntimePolicy, parseRuntimePolicy } from '../../lib/ima/runtime-policy.js';
import { verifyImaList } from '../../lib/ima/verify-ima-list.js';
import { RUST_KEYLIME_PCR10_SHA1, rustKeylimeLog, vectorText, verificationVector } from './ima-vectors.js';

/** An independent replay: sha1 bank, from zero, all-zero template hashes as 0xff (Keylime spec §7.6). */
function referenceSha1(text: string): string {
  let pcr = Buffer.alloc(20);
  for (const entry of parseImaAsciiList(text)) {
    const zero = entry.templateHash.equals(Buffer.alloc(20));
    const digest = zero ? Buffer.alloc(20, 0xff) : createHash('sha1').update(entry.templateData).digest();
    pcr = createHash('sha1').update(pcr).update(digest).digest();
  }
  return pcr.toString('hex');
}

/** The whole list as a policy, so tampering is caught by content rules as well as by hashes. */
function policyFor(text: string): ReturnType<typeof compileRuntimePolicy> {
  const policy = emptyRuntimePolicy();
  for (const entry of parseImaAsciiList(text)) {
    (policy.digests[entry.path] ??= []).push(entry.digest.hex);
  }
  return compileRuntimePolicy(parseRuntimePolicy(policy));
}

describe('verifyImaList: replay and template hashes', () => {
  const log = rustKeylimeLog();

  it('replays the 826-entry rust-keylime list to sha1 PCR 10 82231c67…25fc and matches it as the quoted value', () => {
    const result = verifyImaList({ listText: log, quotedPcr10: { bank: 'sha1', value: RUST_KEYLIME_PCR10_SHA1 } });
    expect(result.valid).to.equal(true);
    expect(result.pcr10.sha1).to.equal(RUST_KEYLIME_PCR10_SHA1);
    expect(result.entriesChecked).to.equal(826);
    expect(result.matchedEntries).to.equal(826);
    expect(result.nextState.nextEntry).to.equal(826);
  });

  it('matches its own sha256 replay as a sha256 quote', () => {
    const { pcr10 } = verifyImaList({ listText: log });
    const result = verifyImaList({ listText: log, quotedPcr10: { bank: 'sha256', value: pcr10.sha256! } });
    expect(result.valid).to.equal(true);
    expect(result.matchedEntries).to.equal(826);
  });

  it('replays the keylime vectors to the independently computed values', () => {
    const replay = (text: string): string => verifyImaList({ listText: text }).pcr10.sha1!;
    expect(replay(vectorText('keylime', 'ima', 'ast', 'valid_entries.ascii'))).to.equal('08be502a6587600eba07de8348cc45be85e43bbb');
    expect(replay(verificationVector('signatures_2_entries.ascii'))).to.equal('5bfd7d5ca54868d443d09b9e3c4fca6d7d2c1d15');
    const measurements = verificationVector('measurements_3_entries.ascii');
    expect(replay(measurements + verificationVector('signatures_2_entries.ascii'))).to.equal('357ad3dba1f24238f7818d82e4049a642854d17a');
    const lines = splitImaAsciiLines(measurements);
    const expected = ['99240d2a29b518dcce58d80f3eb425d0910723fc', 'e8686d0a97a6c7ddf977e8ec6fe868b0f62e550e', 'dff39e2db052e00d11f45770bb127c4053e14f32'];
    expected.forEach((value, i) => expect(replay(`${lines.slice(0, i + 1).join('\n')}\n`)).to.equal(value));
    expect(replay(vectorText('rust-keylime', 'ima_log.txt'))).to.equal('703b9083e1f35ae2faf8aee75f0541c709c53c77');
  });

  it('extends a violation (all-zero template hash) with all-ones and skips its content (ima-log-sha1 line 1)', () => {
    const text = vectorText('keylime', 'runtime_policy', 'create-runtime-policy', 'ima-log-sha1');
    const result = verifyImaList({ listText: text, policy: compileRuntimePolicy(emptyRuntimePolicy()) });
    expect(result.pcr10.sha1).to.equal(referenceSha1(text));
    // Only /data fails the empty policy: the violation's content is not checked.
    expect(result.failures.map((f) => [f.line, f.path])).to.deep.equal([[2, '/data']]);
    const strict = verifyImaList({ listText: text, failOnTomtou: true });
    expect(strict.failures.map((f) => [f.line, f.eventId])).to.deep.equal([[1, IMA_EVENTS.tomtou]]);
  });

  it('checks template hashes with the policy log_hash_alg (sha256 template hashes)', () => {
    const entry = parseImaAsciiList(vectorText('rust-keylime', 'ima_log.txt'))[0]!;
    const sha256 = createHash('sha256').update(entry.templateData).digest('hex');
    const line = `10 ${sha256} ima-ng sha256:${entry.digest.hex} boot_aggregate\n`;
    const policy = emptyRuntimePolicy();
    policy.ima.log_hash_alg = 'sha256';
    policy.digests['boot_aggregate'] = [entry.digest.hex];
    expect(verifyImaList({ listText: line, policy: compileRuntimePolicy(policy) }).valid).to.equal(true);
    const sha1Failures = verifyImaList({ listText: line }).failures;
    expect(sha1Failures.map((f) => f.eventId)).to.deep.equal([IMA_EVENTS.imaHash]);
  });

  it('accepts extra boot_aggregate digests from the caller (UEFI-log aggregates)', () => {
    const text = verificationVector('measurements_3_entries.ascii');
    const policy = parseRuntimePolicy(verificationVector('runtime_policy_test.json'));
    const aggregate = policy.digests['boot_aggregate']![0]!;
    policy.digests['boot_aggregate'] = ['ab'.repeat(32)];
    const compiled = compileRuntimePolicy(policy);
    expect(verifyImaList({ listText: text, policy: compiled }).failures.map((f) => f.eventId)).to.deep.equal([IMA_EVENTS.runtimePolicyHash]);
    expect(verifyImaList({ listText: text, policy: compiled, bootAggregates: [aggregate] }).valid).to.equal(true);
  });

  describe('tampered lists fail', () => {
    const text = verificationVector('measurements_3_entries.ascii');
    const policy = policyFor(text);
    const good = verifyImaList({ listText: text, policy });
    const quoted = { bank: 'sha1' as const, value: good.pcr10.sha1! };
    const lines = splitImaAsciiLines(text);

    it('the untampered list passes with its PCR', () => {
      expect(verifyImaList({ listText: text, policy, quotedPcr10: quoted }).valid).to.equal(true);
    });

    it('a changed file digest: template hash mismatch and PCR mismatch', () => {
      const tampered = text.replace('sha256:f1125b94', 'sha256:f1125b95');
      const ids = verifyImaList({ listText: tampered, policy, quotedPcr10: quoted }).failures.map((f) => f.eventId);
      expect(ids).to.deep.equal([IMA_EVENTS.imaHash, IMA_EVENTS.pcrMismatch]);
    });

    it('a changed file digest with a recomputed template hash: policy hash failure and PCR mismatch', () => {
      const entries = parseImaAsciiList(text);
      const [, second] = entries;
      const forged = formatImaAsciiLine({ ...second!, digest: { ...second!.digest, hex: '00'.repeat(32) } });
      const reparsed = parseImaAsciiList(`${forged}\n`)[0]!;
      const withHash = forged.replace(/^10 [0-9a-f]{40}/, `10 ${createHash('sha1').update(reparsed.templateData).digest('hex')}`);
      const listText = [lines[0], withHash, lines[2]].join('\n') + '\n';
      const ids = verifyImaList({ listText, policy, quotedPcr10: quoted }).failures.map((f) => [f.line, f.eventId]);
      expect(ids).to.deep.equal([
        [2, IMA_EVENTS.runtimePolicyHash],
        [0, IMA_EVENTS.pcrMismatch],
      ]);
    });

    it('a changed path', () => {
      const tampered = text.replace('usb-common.ko', 'usb-commom.ko');
      const ids = verifyImaList({ listText: tampered, policy, quotedPcr10: quoted }).failures.map((f) => f.eventId);
      expect(ids).to.deep.equal([IMA_EVENTS.imaHash, IMA_EVENTS.pcrMismatch]);
    });

    it('a removed line', () => {
      const listText = [lines[0], lines[2]].join('\n') + '\n';
      const ids = verifyImaList({ listText, policy, quotedPcr10: quoted }).failures.map((f) => f.eventId);
      expect(ids).to.deep.equal([IMA_EVENTS.pcrMismatch]);
    });

    it('reordered lines', () => {
      const listText = [lines[0], lines[2], lines[1]].join('\n') + '\n';
      const ids = verifyImaList({ listText, policy, quotedPcr10: quoted }).failures.map((f) => f.eventId);
      expect(ids).to.deep.equal([IMA_EVENTS.pcrMismatch]);
    });

    it('a line for another PCR', () => {
      const listText = text.replace(/\n10 f8a7/, '\n11 f8a7');
      const failures = verifyImaList({ listText, policy }).failures;
      expect(failures.map((f) => [f.line, f.eventId, f.context['got']])).to.deep.equal([[3, IMA_EVENTS.imaPcr, '11']]);
    });

    it('an unparsable line is ima.parser.entry and is not extended', () => {
      const listText = [lines[0], 'garbage line here', lines[1], lines[2]].join('\n') + '\n';
      const result = verifyImaList({ listText, policy, quotedPcr10: quoted });
      expect(result.failures.map((f) => [f.line, f.eventId])).to.deep.equal([[2, IMA_EVENTS.parserEntry]]);
      expect(result.pcr10.sha1).to.equal(good.pcr10.sha1);
      expect(result.valid).to.equal(false);
      expect(result.nextState.nextEntry).to.equal(0);
    });
  });

  it('refuses bad arguments with ERR_INVALID_PARAMETER_VALUE', () => {
    expect(() => verifyImaList({})).to.throw(/give exactly one of listText and entries/);
    expect(() => verifyImaList({ listText: '', quotedPcr10: { bank: 'sha256', value: '00'.repeat(20) } })).to.throw(
      /quotedPcr10 must be a sha256 digest \(32 bytes\)/,
    );
    expect(() => verifyImaList({ listText: '', quotedPcr10: { bank: 'sha1', value: 'zz'.repeat(20) } })).to.throw(/sha1 digest/);
  });
});
