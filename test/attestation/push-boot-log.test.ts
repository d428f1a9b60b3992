import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import type { AgentPolicies } from '../../lib/attestation/agent-policies.js';
import { BootLogMemo, MAX_REMEMBERED_LOG } from '../../lib/attestation/boot-log-memo.js';
import { bootLogHeld, heldBootLog, heldFromStore, pushBootLogToHold, storedPushBootLog, type PushBootLogs } from '../../lib/attestation/push-boot-log.js';
import type { PushChoice, PushEvidence } from '../../lib/attestation/push-decision.js';
import { createRefstate } from '../../lib/mb/create-refstate.js';
import { parseEventLog } from '../../lib/mb/parse-event-log.js';
import { vectorPath } from '../helpers/paths.js';

const BOOT_LOG = new Uint8Array(readFileSync(vectorPath('rust-keylime', 'uefi_log.bin')));
const PCRS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];

/** Which records phase 1 and phase 2 of a push attestation accept (`push-boot-log.ts`). */
describe('push boot logs: the record a push attestation may stand on', () => {
  const refstate = createRefstate(parseEventLog(BOOT_LOG), { withoutSecureBoot: true });
  const policies = { mbRefstate: refstate, measuredBootEvaluate: 'once' } as AgentPolicies;
  const choice = { hashAlg: 'sha256', pcrs: PCRS, bootTime: 1000, uefiLog: false, uefiLogHeld: true } as unknown as PushChoice;
  const agent = { agentId: 'a1', enrolment: '7', akTpm: 'AK' };
  let memo: BootLogMemo;
  let logs: PushBootLogs;

  beforeEach(() => {
    memo = new BootLogMemo();
    logs = { memo, agentId: 'a1', enrolment: '7', policyName: 'example' };
    memo.remember('a1', {
      kind: 'push',
      enrolment: '7',
      context: { ak: 'AK', hashAlg: 'sha256', mask: '0xffff', refstate, measuredBootEvaluate: 'once', policyName: 'example' },
      eventLog: 'LOG',
      bootTime: 1000,
    });
  });

  it('phase 1 leaves the log out for the same enrolment, boot time, AK, bank, selection, refstate and switches only', () => {
    expect(bootLogHeld(logs, policies, 'AK', 'sha256', PCRS, 1000)).to.equal(true);
    const changes: [string, () => boolean][] = [
      ['enrolment (deleted and enrolled again, the same boot)', () => bootLogHeld({ ...logs, enrolment: '8' }, policies, 'AK', 'sha256', PCRS, 1000)],
      ['boot time', () => bootLogHeld(logs, policies, 'AK', 'sha256', PCRS, 2000)],
      ['AK', () => bootLogHeld(logs, policies, 'other AK', 'sha256', PCRS, 1000)],
      ['bank', () => bootLogHeld(logs, policies, 'AK', 'sha1', PCRS, 1000)],
      ['selection', () => bootLogHeld(logs, policies, 'AK', 'sha256', PCRS.slice(1), 1000)],
      ['refstate', () => bootLogHeld(logs, { ...policies, mbRefstate: { ...refstate } }, 'AK', 'sha256', PCRS, 1000)],
      ['measured_boot_evaluate', () => bootLogHeld(logs, { ...policies, measuredBootEvaluate: 'always' }, 'AK', 'sha256', PCRS, 1000)],
      ['policy name', () => bootLogHeld({ ...logs, policyName: 'accept-all' }, policies, 'AK', 'sha256', PCRS, 1000)],
    ];
    for (const [what, held] of changes) {
      const record = memo.recallPush('a1');
      expect(record, `${what}: held before`).to.not.equal(undefined);
      expect(held(), what).to.equal(false);
      expect(memo.recallPush('a1'), `${what}: the record is dropped`).to.equal(undefined);
      if (record !== undefined) memo.remember('a1', record);
    }
  });

  it('phase 2 finds the log only for the enrolment, boot time, AK, bank and selection phase 1 chose it for', () => {
    expect(heldBootLog(memo, agent, choice)).to.equal('LOG');
    expect(heldBootLog(memo, { ...agent, enrolment: '8' }, choice), 'enrolled again, the same boot').to.equal(undefined);
    expect(heldBootLog(memo, agent, { ...choice, bootTime: 2000 })).to.equal(undefined);
    expect(heldBootLog(memo, { ...agent, akTpm: 'other AK' }, choice)).to.equal(undefined);
    expect(heldBootLog(memo, agent, { ...choice, hashAlg: 'sha1' })).to.equal(undefined);
    expect(heldBootLog(memo, agent, { ...choice, pcrs: PCRS.slice(1) })).to.equal(undefined);
    expect(heldBootLog(memo, { ...agent, agentId: 'another agent' }, choice)).to.equal(undefined);
  });

  it('a push record is not a pull record, nor the other way round', () => {
    expect(memo.recall('a1')).to.equal(undefined);
    expect(memo.recallPush('a1')?.eventLog).to.equal('LOG');
  });

  it('a stored log stands for the AK, refstate and switches it was verified under only (another process compares their digest)', () => {
    const held = pushBootLogToHold('example', policies, agent, { ...choice, uefiLog: true, uefiLogHeld: false }, { uefiLog: 'LOG' } as PushEvidence);
    if (held === undefined) throw new Error('a log sent for a known boot time is held');
    expect(held.enrolment, 'held for the enrolment that sent it').to.equal('7');
    const stored = storedPushBootLog(held, 'AK');
    expect(stored).to.include({ bootTime: 1000, hashAlg: 'sha256', mask: '0xffff', eventLog: 'LOG' });
    const again = heldFromStore(stored, 'example', { ...policies, mbRefstate: JSON.parse(JSON.stringify(refstate)) as typeof refstate }, { ...agent, enrolment: '8' });
    expect(again?.eventLog, 'the same refstate parsed again').to.equal('LOG');
    expect(again?.enrolment, 'held for the enrolment it was read for').to.equal('8');
    const changed = { ...refstate, has_secureboot: !refstate.has_secureboot };
    expect(heldFromStore(stored, 'example', { ...policies, mbRefstate: changed }, agent), 'refstate').to.equal(undefined);
    expect(heldFromStore(stored, 'example', policies, { ...agent, akTpm: 'other AK' }), 'AK').to.equal(undefined);
    expect(heldFromStore(stored, 'example', { ...policies, measuredBootEvaluate: 'always' }, agent), 'measured_boot_evaluate').to.equal(undefined);
    expect(heldFromStore(stored, 'accept-all', policies, agent), 'policy name').to.equal(undefined);
    expect(heldFromStore(stored, 'example', { ...policies, mbRefstate: null }, agent), 'no refstate').to.equal(undefined);
  });

  it('only a log sent for a known boot time, and not too long, is held (and stored)', () => {
    const sent = { ...choice, uefiLog: true, uefiLogHeld: false };
    expect(pushBootLogToHold('example', policies, agent, { ...sent, bootTime: null }, { uefiLog: 'LOG' } as PushEvidence)).to.equal(undefined);
    expect(pushBootLogToHold('example', policies, agent, sent, {} as PushEvidence)).to.equal(undefined);
    expect(pushBootLogToHold('example', policies, agent, sent, { uefiLog: '' } as PushEvidence)).to.equal(undefined);
    expect(pushBootLogToHold('example', policies, agent, sent, { uefiLog: 'A'.repeat(MAX_REMEMBERED_LOG + 1) } as PushEvidence), 'too long to hold').to.equal(undefined);
  });
});
