import { expect } from 'chai';
import { pino } from 'pino';
import type { HistoryRow } from '../../lib/attestation/history-row.js';
import { RoundRetrier, STORED_UNSEEN } from '../../lib/verifier/round-retrier.js';
import { VerifierHealth } from '../../lib/verifier/verifier-health.js';

const PASS: HistoryRow = { outcome: 'pass', nonce: null, imaMlEntry: null, imaEntriesReceived: null, failures: [] };

/** What the retrier did, in order: `send:<retry>` and `holds:<round id>` (`holdsRound` asked). */
function scripted(answers: readonly (boolean | Error)[], held: readonly boolean[] = []) {
  const steps: string[] = [];
  const sends = [...answers];
  const holds = [...held];
  const retrier = new RoundRetrier({
    rounds: {
      holdsRound: (_agentId: string, roundId: string) => {
        steps.push(`holds:${roundId.length}`);
        return Promise.resolve(holds.shift() ?? false);
      },
    },
    backoff: { initialDelayMs: 1, maxDelayMs: 1 },
    health: new VerifierHealth(),
    log: pino({ level: 'silent' }),
  });
  const store = () =>
    retrier.store({
      agentId: 'agent-1',
      history: PASS,
      send: (roundId: string, retry: boolean) => {
        steps.push(`send:${retry}:${roundId.length}`);
        const answer = sends.shift() ?? new Error('no answer scripted');
        return answer instanceof Error ? Promise.reject(answer) : Promise.resolve(answer);
      },
      stored: (result: boolean) => result,
    });
  return { steps, store };
}

/**
 * The retrier's first write goes straight to `send` (not a retry, no history to look in: docs/fleet.md,
 * twenty-second pass), and only a write after a failed one asks the history for the round first and
 * again when refused. Held without a database: the order of the calls is the behaviour.
 */
describe('round retrier: the first write is sent as it is, only retries look for an earlier commit', function () {
  it('a first write that answers: sent once as a first write, the history never asked', async function () {
    const { steps, store } = scripted([true]);
    expect(await store()).to.equal(true);
    expect(steps).to.deep.equal(['send:false:32']);
  });

  it('a first write refused is the answer: not looked for, not sent again', async function () {
    const { steps, store } = scripted([false]);
    expect(await store()).to.equal(false);
    expect(steps).to.deep.equal(['send:false:32']);
  });

  it('a failed first write: the retry asks the history, sends as a retry with the same round id, and asks again when refused', async function () {
    const { steps, store } = scripted([new Error('connection lost'), false], [false, false]);
    expect(await store()).to.equal(false);
    expect(steps).to.deep.equal(['send:false:32', 'holds:32', 'send:true:32', 'holds:32']);
  });

  it('a failed first write whose commit landed: found in the history before anything is sent again', async function () {
    const { steps, store } = scripted([new Error('commit reply lost')], [true]);
    expect(await store()).to.equal(STORED_UNSEEN);
    expect(steps).to.deep.equal(['send:false:32', 'holds:32']);
  });

  it('a first write that throws at once, not as a rejection, is a failed write: kept, tried again, stored', async function () {
    const steps: string[] = [];
    const health = new VerifierHealth();
    const retrier = new RoundRetrier({
      rounds: { holdsRound: () => Promise.resolve(false) },
      backoff: { initialDelayMs: 1, maxDelayMs: 1 },
      health,
      log: pino({ level: 'silent' }),
    });
    const stored = retrier.store({
      agentId: 'agent-1',
      history: PASS,
      send: (_roundId: string, retry: boolean) => {
        steps.push(`send:${retry}`);
        if (!retry) throw new Error('thrown before any promise');
        return Promise.resolve(true);
      },
      stored: (result: boolean) => result,
    });
    expect(stored).to.be.instanceOf(Promise);
    expect(await stored).to.equal(true);
    expect(steps).to.deep.equal(['send:false', 'send:true']);
    expect(health.problem()).to.equal(undefined);
  });
});
