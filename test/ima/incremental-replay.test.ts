import { createHash } from 'node:crypto';
import { expect } from 'chai';
import { parseImaAsciiList, splitImaAsciiLines } from '../../lib/ima/ascii-list-parser.js';
import { compileRuntimePolicy } from '../../lib/ima/compiled-policy.js';
import { IMA_EVENTS } from '../../lib/ima/ima-failure.js';
import { initialImaReplayState, parseImaReplayState, type ImaReplayState } from '../../lib/ima/ima-replay-state.js';
import { emptyRuntimePolicy, parseRuntimePolicy } from '../../lib/ima/runtime-policy.js';
import { verifyImaList } from '../../lib/ima/verify-ima-list.js';
import { RUST_KEYLIME_PCR10_SHA1, rustKeylimeLog, verificationVector } from './ima-vectors.js';

const lines = splitImaAsciiLines(rustKeylimeLog());
const join = (from: number, to: number): string => lines.slice(from, to).map((l) => `${l}\n`).join('');

/** PCR 10 (both banks) after each prefix of the list, replayed independently with node:crypto. */
const prefixPcrs = ((): Array<{ sha1: string; sha256: string }> => {
  let sha1 = Buffer.alloc(20);
  let sha256 = Buffer.alloc(32);
  const out = [{ sha1: sha1.toString('hex'), sha256: sha256.toString('hex') }];
  for (const entry of parseImaAsciiList(rustKeylimeLog())) {
    sha1 = createHash('sha1').update(sha1).update(createHash('sha1').update(entry.templateData).digest()).digest();
    sha256 = createHash('sha256').update(sha256).update(createHash('sha256').update(entry.templateData).digest()).digest();
    out.push({ sha1: sha1.toString('hex'), sha256: sha256.toString('hex') });
  }
  return out;
})();

/** PCR 10 (both banks) after the first `n` lines. */
function pcrAfter(n: number): { sha1: string; sha256: string } {
  return prefixPcrs[n] ?? expect.fail(`no prefix ${n}`);
}

/** One quote round: the node sends its list from `state.nextEntry` up to `logLength`; the quote covers `quoted` lines. */
function round(state: ImaReplayState, logLength: number, quoted: number, bank: 'sha1' | 'sha256' = 'sha1') {
  return verifyImaList({
    listText: join(state.nextEntry, logLength),
    startEntry: state.nextEntry,
    state,
    quotedPcr10: { bank, value: pcrAfter(quoted)[bank] },
  });
}

describe('verifyImaList: incremental rounds', () => {
  for (const bank of ['sha1', 'sha256'] as const) {
    it(`rounds of new lines replay to the same PCR 10 and state as one full replay (${bank} bank)`, () => {
      let state = initialImaReplayState();
      let checked = 0;
      for (const end of [1, 100, 101, 400, 826]) {
        const result = round(state, end, end, bank);
        expect(result.valid, `round to ${end}`).to.equal(true);
        checked += result.entriesChecked;
        state = result.nextState;
      }
      expect(checked).to.equal(826);
      expect(state.nextEntry).to.equal(826);
      expect(state.pcr10).to.deep.equal({ [bank]: pcrAfter(826)[bank] });
      const full = verifyImaList({ listText: rustKeylimeLog(), quotedPcr10: { bank, value: pcrAfter(826)[bank] } });
      expect(state).to.deep.equal(full.nextState);
    });
  }

  it('a round with no new line matches the stored PCR (iterative attestation, test_iterative_attestation)', () => {
    const first = round(initialImaReplayState(), 826, 826);
    const again = round(first.nextState, 826, 826);
    expect(again.valid).to.equal(true);
    expect(again.entriesChecked).to.equal(0);
    expect(again.nextState).to.deep.equal(first.nextState);
  });

  it('the state survives JSON storage', () => {
    const first = round(initialImaReplayState(), 300, 300);
    const stored = parseImaReplayState(JSON.parse(JSON.stringify(first.nextState)));
    expect(round(stored, 826, 826).nextState.pcr10.sha1).to.equal(RUST_KEYLIME_PCR10_SHA1);
  });

  describe('the log is ahead of the quoted PCR (race)', () => {
    it('commits the matched prefix, validates the rest, and asks for it again', () => {
      const result = round(initialImaReplayState(), 500, 495);
      expect(result.valid).to.equal(true);
      expect(result.entriesChecked).to.equal(500);
      expect(result.matchedEntries).to.equal(495);
      expect(result.nextState.nextEntry).to.equal(495);
      expect(result.nextState.pcr10).to.deep.equal({ sha1: pcrAfter(495).sha1 });
      expect(result.nextState.lagEntries).to.equal(5);
      expect(result.pcr10).to.deep.equal({ sha1: pcrAfter(500).sha1 });
      const next = round(result.nextState, 826, 826);
      expect(next.valid).to.equal(true);
      expect(next.nextState.pcr10.sha1).to.equal(RUST_KEYLIME_PCR10_SHA1);
    });

    it('a bad line after the match still fails the round', () => {
      const text = join(0, 10).replace(/\n([^\n]*)\n$/, (_, last: string) => `\n${last.replace(/ \/(\S+)$/, ' /tampered')}\n`);
      const result = verifyImaList({ listText: text, startEntry: 0, quotedPcr10: { bank: 'sha1', value: pcrAfter(5).sha1 } });
      expect(result.failures.map((f) => [f.line, f.eventId])).to.deep.equal([[10, IMA_EVENTS.imaHash]]);
      expect(result.nextState).to.deep.equal(initialImaReplayState());
    });

    it('quote progress: the next quote must cover the lines the last round saw past its match', () => {
      const lagging = round(initialImaReplayState(), 500, 495);
      const stuck = round(lagging.nextState, 510, 498);
      expect(stuck.failures.map((f) => f.eventId)).to.deep.equal([IMA_EVENTS.quoteProgress]);
      expect(stuck.failures[0]?.context).to.include({ previousLag: 5, matchedEntries: 3 });
      expect(stuck.nextState).to.deep.equal(initialImaReplayState());
      expect(round(lagging.nextState, 510, 500).valid).to.equal(true);
    });

    it('quote progress also holds when the first quote covered none of the lines', () => {
      const first = verifyImaList({ listText: join(0, 3), startEntry: 0, quotedPcr10: { bank: 'sha1', value: pcrAfter(0).sha1 } });
      expect(first.valid).to.equal(true);
      expect(first.nextState).to.include({ nextEntry: 0, lagEntries: 3 });
      const stuck = verifyImaList({ listText: join(0, 5), startEntry: 0, state: first.nextState, quotedPcr10: { bank: 'sha1', value: pcrAfter(0).sha1 } });
      expect(stuck.failures.map((f) => f.eventId)).to.deep.equal([IMA_EVENTS.quoteProgress]);
    });

    it('a quote matching no prefix is ima.pcr_mismatch and resets the state', () => {
      const state = round(initialImaReplayState(), 400, 400).nextState;
      const result = verifyImaList({
        listText: join(400, 826),
        startEntry: 400,
        state,
        quotedPcr10: { bank: 'sha1', value: 'ab'.repeat(20) },
      });
      expect(result.failures.map((f) => [f.line, f.eventId])).to.deep.equal([[0, IMA_EVENTS.pcrMismatch]]);
      expect(result.failures[0]?.context).to.include({ bank: 'sha1', quoted: 'ab'.repeat(20), replayed: RUST_KEYLIME_PCR10_SHA1 });
      expect(result.nextState).to.deep.equal(initialImaReplayState());
    });
  });

  it('a list sent from entry 0 restarts the replay (the node rebooted or the state was reset)', () => {
    const state = round(initialImaReplayState(), 826, 826).nextState;
    const result = verifyImaList({ listText: join(0, 20), startEntry: 0, state, quotedPcr10: { bank: 'sha1', value: pcrAfter(20).sha1 } });
    expect(result.valid).to.equal(true);
    expect(result.nextState.nextEntry).to.equal(20);
  });

  it('a list from another entry than asked for is qoute_validation.invalid_ima_entry_nb', () => {
    const state = round(initialImaReplayState(), 100, 100).nextState;
    const result = verifyImaList({ listText: join(90, 200), startEntry: 90, state });
    expect(result.failures.map((f) => f.eventId)).to.deep.equal([IMA_EVENTS.invalidEntryNumber]);
    expect(result.failures[0]?.context.message).to.equal('the list starts at entry 90, entry 100 was asked for');
  });

  it('a policy failure resets the state, so the next round replays from entry 0', () => {
    const policy = compileRuntimePolicy(emptyRuntimePolicy());
    const result = verifyImaList({ listText: join(0, 3), startEntry: 0, policy });
    expect(result.valid).to.equal(false);
    expect(result.nextState).to.deep.equal(initialImaReplayState());
  });

  it('keys learnt from ima-buf in one round verify ima-sig entries of a later round', () => {
    const policy = parseRuntimePolicy(verificationVector('runtime_policy_empty.json'));
    policy.keyrings['.ima'] = ['a7d52aaa18c23d2d9bb2abb4308c0eeee67387a42259f4a6b1a42257065f3d5a'];
    const compiled = compileRuntimePolicy(policy);
    const first = verifyImaList({ listText: verificationVector('keyrings_ima_buf_1_entry.ascii'), startEntry: 0, policy: compiled });
    expect(first.valid).to.equal(true);
    expect(first.nextState.learnedKeyrings['.ima']?.keyids).to.have.length(1);
    const stored = parseImaReplayState(JSON.parse(JSON.stringify(first.nextState)));
    // The learnt key is an EC P-256 test CA key, not one of the signature keys: signatures still fail,
    // but the key is carried from round to round.
    const second = verifyImaList({ listText: '', startEntry: 1, state: stored, policy: compiled });
    expect(second.nextState.learnedKeyrings).to.deep.equal(first.nextState.learnedKeyrings);
  });

  for (const bank of ['sha1', 'sha256'] as const) {
    it(`a round with no new line keeps the state when the quote holds it, and fails when it does not (${bank} bank)`, () => {
      const stored = round(initialImaReplayState(), 100, 100, bank).nextState;
      const same = round(stored, 100, 100, bank);
      expect(same.valid).to.equal(true);
      expect(same.entriesChecked).to.equal(0);
      expect(same.matchedEntries).to.equal(0);
      expect(same.pcr10).to.deep.equal({ [bank]: pcrAfter(100)[bank] });
      expect(same.nextState).to.deep.equal(stored);
      const ahead = round(stored, 100, 101, bank);
      expect(ahead.valid).to.equal(false);
      expect(ahead.failures.map((failure) => failure.eventId)).to.deep.equal([IMA_EVENTS.pcrMismatch]);
      expect(ahead.pcr10).to.deep.equal({ [bank]: pcrAfter(100)[bank] });
      const next = round(same.nextState, 101, 101, bank);
      expect(next.valid).to.equal(true);
      expect(next.nextState.pcr10).to.deep.equal({ [bank]: pcrAfter(101)[bank] });
    });
  }

  it('refuses a malformed stored state with ERR_INVALID_PARAMETER_VALUE', () => {
    expect(() => parseImaReplayState({ nextEntry: -1, pcr10: { sha1: '0'.repeat(40), sha256: '0'.repeat(64) } })).to.throw(
      /IMA replay state: nextEntry must be a non-negative integer/,
    );
    expect(() => parseImaReplayState({ nextEntry: 0, pcr10: { sha1: '0'.repeat(39), sha256: '0'.repeat(64) } })).to.throw(
      /pcr10\.sha1 must be 40 lowercase hex digits/,
    );
    try {
      parseImaReplayState('nope');
    } catch (error) {
      expect((error as { code: string }).code).to.equal('ERR_INVALID_PARAMETER_VALUE');
    }
  });
});
