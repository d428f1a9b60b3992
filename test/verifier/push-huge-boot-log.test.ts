import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { initialAgentState } from '../../lib/attestation/agent-state.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { choosePushEvidence, decidePushEvidence, type PushEvidenceInput, type PushVerdict } from '../../lib/attestation/push-decision.js';
import { compileSeverityPolicy } from '../../lib/attestation/severity.js';
import { createRefstate } from '../../lib/mb/create-refstate.js';
import { MAX_EVENT_LOG_BYTES, MAX_EVENT_LOG_EVENTS, parseEventLog } from '../../lib/mb/parse-event-log.js';
import { finish } from '../../lib/ima/stepwise.js';
import { judgeInSlices } from '../../lib/verifier/judge-in-slices.js';
import { policiesFor } from '../attestation/engine-fixtures.js';
import { FakeAgent } from '../attestation/fake-agent.js';
import { grownBootLog, grownBootLogOfEvents, REAL_BOOT_LOG } from '../mb/huge-boot-log.js';
import { sha256Capabilities } from './helpers/push-capabilities.js';

/** The agent's boot log: the real one grown to the most events a boot log may hold (some 750 KB). */
const LOG_EVENTS = MAX_EVENT_LOG_EVENTS;

/**
 * Issue 10/13: a push agent's phase 2 may carry a boot log of tens of MiB (a root user on the node can
 * extend a PCR at runtime as often as it likes, and log each extend). Decoded, parsed, replayed and
 * evaluated in one go it held the verifier's event loop for seconds (and 600,000 events cost 25 s of CPU
 * and 2 GB of heap). A log over `MAX_EVENT_LOG_EVENTS` or `MAX_EVENT_LOG_BYTES` now fails at once, not
 * decoded; one within them is judged a slice at a time (`decidePushEvidence` pauses between pieces of it,
 * `judgeInSlices` resumes it), reaching the verdict it reaches in one go. A log that does not decode,
 * parse or replay still fails.
 */
describe('push evidence: a huge boot log judged a slice at a time', function () {
  this.timeout(180_000);
  const grown = grownBootLogOfEvents(LOG_EVENTS);
  const agent = new FakeAgent({ bootLog: grown });
  const refstate = createRefstate(parseEventLog(REAL_BOOT_LOG), { withoutSecureBoot: true });
  const policies = policiesFor(agent, { mbRefstate: refstate });
  const state = initialAgentState(OperationalState.GET_QUOTE);
  const chosen = choosePushEvidence(state, policies, agent.akTpm, sha256Capabilities({ uefiLog: { entryCount: 0 }, imaLog: { entryCount: 1 } }));
  if (!chosen.ok) throw new Error(chosen.detail);
  const { choice } = chosen;
  const challenge = new Uint8Array(randomBytes(32));
  const [message, signature, subjectData] = agent
    .quote(challenge, new Map(choice.pcrs.map((pcr) => [pcr, agent.pcrs.get(pcr) as Uint8Array])))
    .slice(1)
    .split(':')
    .map((part) => new Uint8Array(Buffer.from(part, 'base64'))) as [Uint8Array, Uint8Array, Uint8Array];
  const imaEntries = agent.imaLines.map((line) => `${line}\n`).join('');
  const base64 = Buffer.from(grown).toString('base64');

  const input = (uefiLog: string): PushEvidenceInput => ({
    state,
    policies,
    choice,
    challenge,
    evidence: { message, signature, subjectData, uefiLog, imaEntries },
    now: 1_700_000_100,
    options: { severityPolicy: compileSeverityPolicy() },
  });

  /**
   * The verdict judged in slices of 2 ms with a 1 ms timer running, and the turns it got. Not the default
   * 10 ms slice: on a fast host the whole check of this log takes only a few of those (3 turns seen in CI),
   * so a count of turns would measure the host, not the slicing.
   */
  async function judgedInSlices(uefiLog: string): Promise<{ readonly verdict: PushVerdict; readonly turns: number }> {
    const work = decidePushEvidence(input(uefiLog));
    let turns = 0;
    // Other work's turns while it is judged: a 1 ms timer runs between slices, never inside one.
    const ticker = setInterval(() => (turns += 1), 1);
    try {
      return { verdict: await judgeInSlices(work, 2), turns };
    } finally {
      clearInterval(ticker);
    }
  }

  const eventIds = (verdict: PushVerdict): string[] => verdict.history.failures.map((failure) => failure.event_id);

  it('passes the log replayed and evaluated in slices, with the verdict, history and state of one go', async function () {
    const sliced = await judgedInSlices(base64);
    expect(sliced.verdict.verdict, JSON.stringify(sliced.verdict.history.failures.slice(0, 3))).to.equal('pass');
    expect(sliced.turns, 'timer turns while it was judged (none when judged in one go)').to.be.above(5);
    const once = finish(decidePushEvidence(input(base64)));
    expect(sliced.verdict).to.deep.equal(once);
  });

  it('fails closed a huge log that does not replay to the quote (measured_boot.invalid_pcr_9), as in one go', async function () {
    const changed = Buffer.from(grown);
    // The first byte of the SHA-256 digest (after PCR index, type, digest count and algorithm: 14 bytes) of
    // the first PCR 9 event: that extend is not what the TPM quoted.
    const pcr9 = parseEventLog(REAL_BOOT_LOG).events.find((e) => e.pcrIndex === 9);
    if (pcr9 === undefined) throw new Error('no PCR 9 event in the real log');
    changed.writeUInt8((changed.readUInt8(pcr9.offset + 14) + 1) % 256, pcr9.offset + 14);
    const tampered = changed.toString('base64');
    const sliced = await judgedInSlices(tampered);
    expect(sliced.verdict.verdict).to.equal('fail');
    expect(eventIds(sliced.verdict)).to.include('measured_boot.invalid_pcr_9');
    expect(sliced.verdict).to.deep.equal(finish(decidePushEvidence(input(tampered))));
  });

  it('fails closed a huge log cut in the middle of an event (measured_boot.parser.tpm2_eventlog.error), as in one go', async function () {
    const cut = Buffer.from(grown.subarray(0, grown.length - 7)).toString('base64');
    const sliced = await judgedInSlices(cut);
    expect(sliced.verdict.verdict).to.equal('fail');
    expect(eventIds(sliced.verdict)).to.deep.equal(['measured_boot.parser.tpm2_eventlog.error']);
    expect(sliced.verdict).to.deep.equal(finish(decidePushEvidence(input(cut))));
  });

  it('fails closed a huge text that is not base64 near its end (measured_boot.parser.log.base64decode), as in one go', async function () {
    const broken = `${base64.slice(0, -1000)}*${base64.slice(-999)}`;
    const sliced = await judgedInSlices(broken);
    expect(sliced.verdict.verdict).to.equal('fail');
    expect(eventIds(sliced.verdict)).to.deep.equal(['measured_boot.parser.log.base64decode']);
    expect(sliced.verdict).to.deep.equal(finish(decidePushEvidence(input(broken))));
  });

  it('fails at once a log of one event more than a boot log may hold, or of more bytes, or of more base64 text (measured_boot.parser.tpm2_eventlog.error naming the bound)', async function () {
    const oneMore = Buffer.from(grownBootLogOfEvents(MAX_EVENT_LOG_EVENTS + 1)).toString('base64');
    const huge = Buffer.from(grownBootLog(40 * 1024 * 1024)).toString('base64');
    const longLines = Buffer.from(grownBootLog(MAX_EVENT_LOG_BYTES + 1024)).toString('base64').replace(/(.{4})/g, '$1\n');
    for (const [log, bound] of [[oneMore, `more than the ${MAX_EVENT_LOG_EVENTS} events`], [huge, 'characters, more than the'], [longLines, `bytes, more than the ${MAX_EVENT_LOG_BYTES}`]] as const) {
      const sliced = await judgedInSlices(log);
      expect(sliced.verdict.verdict).to.equal('fail');
      expect(eventIds(sliced.verdict)).to.deep.equal(['measured_boot.parser.tpm2_eventlog.error']);
      expect(JSON.stringify(sliced.verdict.history.failures[0]?.context)).to.include(bound);
      expect(sliced.verdict).to.deep.equal(finish(decidePushEvidence(input(log))));
    }
  });
});
