import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { checkMbLog, type MbCheckInput } from '../../lib/attestation/internal/mb-check.js';
import { LOG_TEXT_PER_REFSTATE, LONGEST_LOG_KEPT, MeasuredBootMemo } from '../../lib/attestation/mb-check-memo.js';
import { createRefstate } from '../../lib/mb/create-refstate.js';
import { parseEventLog } from '../../lib/mb/parse-event-log.js';
import { replayEventLog } from '../../lib/mb/replay.js';
import { vectorPath } from '../helpers/paths.js';

/** rust-keylime's test UEFI log: SHA-256 crypto-agile, PCRs 0-9 and 14, Secure Boot off. */
const BOOT_LOG = new Uint8Array(readFileSync(vectorPath('rust-keylime', 'uefi_log.bin')));

describe('measured-boot check memo', () => {
  const memo = new MeasuredBootMemo();
  const log = parseEventLog(BOOT_LOG);
  const refstate = createRefstate(log, { withoutSecureBoot: true });
  const replayed = replayEventLog(log).banks.get('sha256')?.pcrs ?? new Map<number, Uint8Array>();
  const goodPcrs = new Map<number, Uint8Array>([...replayed].filter(([pcr]) => pcr <= 14));
  const input = (pcrs: ReadonlyMap<number, Uint8Array>, eventLog: string | Uint8Array = BOOT_LOG): MbCheckInput => ({
    eventLog,
    pcrs,
    hashAlg: 'sha256',
    refstate,
    evaluatePolicy: true,
    policyName: 'example',
    memo,
  });

  it('answers a repeated round from the memo, with the same outcome', () => {
    const first = checkMbLog(input(goodPcrs));
    expect(first.pcrEvents).to.deep.equal([]);
    expect(first.policyEvents).to.deep.equal([]);
    expect(checkMbLog(input(new Map(goodPcrs)))).to.equal(first);
    // The same log text in a fresh string (as every JSON reply gives) hits too.
    const text = Buffer.from(BOOT_LOG).toString('base64');
    const fromText = checkMbLog(input(goodPcrs, text));
    const misses = memo.stats.misses;
    expect(checkMbLog(input(goodPcrs, (' ' + text).slice(1)))).to.equal(fromText);
    expect(memo.stats.misses).to.equal(misses);
    // The text and the raw bytes of one log are different inputs: each is checked once.
    expect(checkMbLog(input(goodPcrs, BOOT_LOG))).to.equal(first);
    expect(fromText).to.not.equal(first);
  });

  it('recalls a kept outcome without checking (the usual round), and nothing for another PCR value, leaving the memo as it was', () => {
    const own = new MeasuredBootMemo();
    const text = Buffer.from(BOOT_LOG).toString('base64');
    const round = (pcrs: ReadonlyMap<number, Uint8Array>): MbCheckInput => ({ eventLog: text, pcrs, hashAlg: 'sha256', refstate, evaluatePolicy: true, policyName: 'example', memo: own });
    expect(own.recall(round(goodPcrs)), 'nothing kept yet').to.equal(undefined);
    const checked = checkMbLog(round(goodPcrs));
    expect(own.recall(round(new Map(goodPcrs)))).to.equal(checked);
    expect(own.stats).to.deep.equal({ hits: 1, misses: 1 });
    const changed = new Map(goodPcrs).set(4, new Uint8Array(32).fill(9));
    expect(own.recall(round(changed))).to.equal(undefined);
    expect(own.recall({ ...round(goodPcrs), eventLog: BOOT_LOG }), 'a byte log is left to the check').to.equal(undefined);
    expect(own.stats).to.deep.equal({ hits: 1, misses: 1 });
    expect(checkMbLog(round(changed)).pcrEvents.map((event) => event.eventId)).to.deep.equal(['measured_boot.invalid_pcr_4']);
  });

  it('keeps at most LOG_TEXT_PER_REFSTATE characters of log text per refstate: junk logs of a node whose quotes verify push out the oldest, not pile up', () => {
    const own = new MeasuredBootMemo();
    const junk = (letter: string): string => letter.repeat(4 * 1024 * 1024);
    const round = (eventLog: string): MbCheckInput => ({ eventLog, pcrs: goodPcrs, hashAlg: 'sha256', refstate, evaluatePolicy: true, policyName: 'example', memo: own });
    const letters = 'ABCDEFGH'.split('').slice(0, Math.floor(LOG_TEXT_PER_REFSTATE / (4 * 1024 * 1024)) + 1);
    for (const letter of letters) {
      checkMbLog(round(junk(letter)));
    }
    const misses = own.stats.misses;
    checkMbLog(round(junk(letters[letters.length - 1] as string)));
    expect(own.stats.misses, 'the newest log is kept').to.equal(misses);
    checkMbLog(round(junk('A')));
    expect(own.stats.misses, 'the oldest was pushed out by weight, and is checked afresh').to.equal(misses + 1);
  });

  it('keeps no log longer than LONGEST_LOG_KEPT: a hostile node\'s huge log is checked afresh each round, never compared with or hashed against one kept', () => {
    const own = new MeasuredBootMemo();
    for (const huge of ['A'.repeat(LONGEST_LOG_KEPT + 4), new Uint8Array(LONGEST_LOG_KEPT + 1)]) {
      const round: MbCheckInput = { eventLog: huge, pcrs: goodPcrs, hashAlg: 'sha256', refstate, evaluatePolicy: true, policyName: 'example', memo: own };
      const misses = own.stats.misses;
      const first = checkMbLog(round);
      const again = checkMbLog({ ...round, eventLog: typeof huge === 'string' ? (' ' + huge).slice(1) : huge });
      expect(own.stats.misses, 'both checked').to.equal(misses + 2);
      expect(again, 'a fresh outcome, equal to the first').to.not.equal(first);
      expect(again).to.deep.equal(first);
      expect(first.parseEvents.map((event) => event.eventId)).to.have.length(1);
    }
    // A log of the longest length kept is kept.
    const longest = 'A'.repeat(LONGEST_LOG_KEPT);
    const kept = checkMbLog({ eventLog: longest, pcrs: goodPcrs, hashAlg: 'sha256', refstate, evaluatePolicy: true, policyName: 'example', memo: own });
    expect(checkMbLog({ eventLog: longest, pcrs: goodPcrs, hashAlg: 'sha256', refstate, evaluatePolicy: true, policyName: 'example', memo: own })).to.equal(kept);
  });

  it('checks afresh a log of the same length that differs only at its end, right after a hit on the other', () => {
    const text = Buffer.from(BOOT_LOG).toString('base64');
    const hit = checkMbLog(input(goodPcrs, text));
    expect(checkMbLog(input(goodPcrs, (' ' + text).slice(1)))).to.equal(hit);
    const otherLog = Uint8Array.from(BOOT_LOG);
    otherLog[otherLog.length - 1] = (otherLog[otherLog.length - 1] ?? 0) ^ 0xff;
    const otherText = Buffer.from(otherLog).toString('base64');
    expect(otherText.length).to.equal(text.length);
    const misses = memo.stats.misses;
    const other = checkMbLog(input(goodPcrs, otherText));
    expect(memo.stats.misses).to.equal(misses + 1);
    expect(other).to.not.equal(hit);
    expect(other).to.deep.equal(checkMbLog({ ...input(goodPcrs, otherText), memo: undefined }));
    // Back to the first log: still remembered, and the same outcome object.
    expect(checkMbLog(input(goodPcrs, text))).to.equal(hit);
    expect(memo.stats.misses).to.equal(misses + 1);
  });

  it('keys the quoted boot PCRs by index and value: the same bytes under another PCR are another key', () => {
    const local = new MeasuredBootMemo();
    const shifted = new Map([...goodPcrs].map(([pcr, value]) => [pcr === 0 ? 1 : pcr === 1 ? 0 : pcr, value]));
    const first = checkMbLog({ ...input(goodPcrs), memo: local });
    const swapped = checkMbLog({ ...input(shifted), memo: local });
    expect(local.stats.misses).to.equal(2);
    expect(swapped).to.not.equal(first);
    expect(swapped.pcrEvents.map((e) => e.eventId)).to.include('measured_boot.invalid_pcr_0');
  });

  it('keys which boot PCRs were quoted: a set without one is another key, as is one more', () => {
    const local = new MeasuredBootMemo();
    const withoutPcr4 = new Map([...goodPcrs].filter(([pcr]) => pcr !== 4));
    const first = checkMbLog({ ...input(goodPcrs), memo: local });
    const fewer = checkMbLog({ ...input(withoutPcr4), memo: local });
    expect(local.stats.misses).to.equal(2);
    expect(fewer).to.deep.equal(checkMbLog({ ...input(withoutPcr4), memo: undefined }));
    expect(checkMbLog({ ...input(new Map(goodPcrs)), memo: local })).to.equal(first);
    expect(local.stats.misses).to.equal(2);
  });

  it('keeps its own copy of the PCR values: bytes changed after a check are another key', () => {
    const local = new MeasuredBootMemo();
    const pcrs = new Map([...goodPcrs].map(([pcr, value]) => [pcr, Uint8Array.from(value)]));
    const first = checkMbLog({ ...input(pcrs), memo: local });
    (pcrs.get(4) as Uint8Array).fill(0xab);
    const changed = checkMbLog({ ...input(pcrs), memo: local });
    expect(changed).to.not.equal(first);
    expect(changed.pcrEvents.map((e) => e.eventId)).to.include('measured_boot.invalid_pcr_4');
  });

  it('keeps nothing without a memo: the engine itself holds no state', () => {
    const bare = { ...input(goodPcrs), memo: undefined };
    expect(checkMbLog(bare)).to.not.equal(checkMbLog(bare));
    expect(checkMbLog(bare)).to.deep.equal(checkMbLog(bare));
  });

  it('never hides a change: another quoted PCR value, another log or another refstate is checked afresh', () => {
    const tampered = new Map(goodPcrs);
    tampered.set(4, new Uint8Array(32).fill(0xab));
    expect(checkMbLog(input(tampered)).pcrEvents.map((e) => e.eventId)).to.include('measured_boot.invalid_pcr_4');
    const base64 = Buffer.from(BOOT_LOG).toString('base64');
    expect(checkMbLog(input(goodPcrs, base64)).pcrEvents).to.deep.equal([]);
    const otherLog = Uint8Array.from(BOOT_LOG);
    otherLog[otherLog.length - 1] = (otherLog[otherLog.length - 1] ?? 0) ^ 0xff;
    expect(checkMbLog(input(goodPcrs, otherLog))).to.not.equal(checkMbLog(input(goodPcrs)));
    const strict = { ...refstate, has_secureboot: true };
    expect(checkMbLog({ ...input(goodPcrs), refstate: strict }).policyEvents.map((e) => e.eventId)).to.include(
      'measured_boot.policy_example',
    );
  });
});
