import { expect } from 'chai';
import { lateRoundsTarget } from '../../bench/verifier-bench-output.js';
import { analyseRoundTiming, percentiles, type RoundRecord } from '../../lib/fleet/round-timing.js';

const EVENT = 'ima.validation.ima-ng.not_in_allowlist';

function round(agentId: string, verdictAt: number, nonce: string, outcome: RoundRecord['outcome'] = 'pass', eventIds: string[] = []): RoundRecord {
  return { agentId, verdictAt, outcome, nonce, eventIds };
}

describe('fleet: round timing analysis', function () {
  it('counts passes in the window, and a round as late only when it starts more than 10% of the interval after due', function () {
    // Interval 2 s: round n+1 is due 2000 ms after round n's verdict; 10% = 200 ms.
    const rounds = [round('a', 1000, 'n1'), round('a', 3100, 'n2'), round('a', 5400, 'n3'), round('a', 7700, 'n4')];
    const starts = new Map([
      ['n2', 3050], // due 3000: 50 ms after
      ['n3', 5300], // due 5100: 200 ms after, not more: on time
      ['n4', 7650], // due 7400: 250 ms after: late
    ]);
    const report = analyseRoundTiming({
      rounds,
      requestTime: (agentId, nonce) => (agentId === 'a' ? starts.get(nonce) : undefined),
      quoteIntervalSeconds: 2,
      from: 0,
      to: 10_000,
      tampered: new Map(),
      expectedEvent: EVENT,
    });
    expect(report.attestations).to.equal(4);
    expect(report.attestationsPerSecond).to.equal(0.4);
    expect(report.timedRounds).to.equal(3);
    expect(report.lateRounds).to.equal(1);
    expect(report.startDelayMs).to.deep.equal({ p50: 200, p99: 250, max: 250 });
    expect(report.untimedRounds).to.equal(0);
  });

  it('leaves out rounds whose predecessor is outside the window or was not a pass, and counts requests the agent never saw', function () {
    const rounds = [round('a', 500, 'n0'), round('a', 2600, 'n1'), round('b', 1000, 'm1', 'retry'), round('b', 3100, 'm2'), round('b', 5200, 'm3')];
    const report = analyseRoundTiming({
      rounds,
      requestTime: () => undefined,
      quoteIntervalSeconds: 2,
      from: 1000,
      to: 10_000,
      tampered: new Map(),
      expectedEvent: EVENT,
    });
    // a/n1: predecessor before the window; b/m2: predecessor a retry; b/m3: timed, but no request seen.
    expect(report.timedRounds).to.equal(0);
    expect(report.untimedRounds).to.equal(1);
    expect(report.attestations).to.equal(3);
  });

  it('measures tampering to the first failing verdict with the expected event, and reports other failures', function () {
    const rounds = [
      round('t1', 1000, 'a1'),
      round('t1', 3000, 'a2'), // tampered at 2500, but this round's log was read before: still a pass
      round('t1', 5000, 'a3', 'fail', [EVENT]),
      round('t2', 1000, 'b1'),
      round('t2', 3000, 'b2', 'fail', ['ima.pcr_mismatch']), // wrong event: not a detection
      round('ok', 2000, 'c1', 'fail', ['qoute_validation.quote_validation']),
    ];
    const report = analyseRoundTiming({
      rounds,
      requestTime: () => undefined,
      quoteIntervalSeconds: 2,
      from: 0,
      to: 10_000,
      tampered: new Map([
        ['t1', 2500],
        ['t2', 2000],
        ['t3', 2000], // never failed
      ]),
      expectedEvent: EVENT,
    });
    expect(report.tampered).to.equal(3);
    expect(report.detected).to.equal(1);
    expect(report.detectionMs).to.deep.equal({ p50: 2500, p99: 2500, max: 2500 });
    expect(report.unexpectedFailures).to.equal(1);
    expect(report.unexpectedEvents).to.deep.equal(['qoute_validation.quote_validation']);
  });

  it('counts agents whose rounds stopped coming as overdue at the window\'s end, which late rounds cannot see', function () {
    // Interval 2 s, window 0..10 s, late beyond 200 ms after due.
    const rounds = [
      // Polled throughout; its next round started on time (9.9 s, due 9.9 s), its verdict after the window.
      round('steady', 1900, 's1'), round('steady', 3900, 's2'), round('steady', 5900, 's3'), round('steady', 7900, 's4'), round('steady', 10_100, 's5'),
      // Never polled in the window: its last verdict came before it.
      round('starved', -500, 'x1'),
      // Polled until 4 s, then dropped: its next round never came.
      round('dropped', 2000, 'd1'), round('dropped', 4000, 'd2'),
      // Failed at 3 s: a failed agent is polled no more, by design.
      round('failed', 1000, 'f1'), round('failed', 3000, 'f2', 'fail', [EVENT]),
    ];
    const starts = new Map([['s2', 3900], ['s3', 5900], ['s4', 7900], ['s5', 9900], ['d2', 3900]]);
    const report = analyseRoundTiming({
      rounds,
      requestTime: (_agentId, nonce) => starts.get(nonce),
      quoteIntervalSeconds: 2,
      from: 0,
      to: 10_000,
      tampered: new Map([['failed', 2500]]),
      expectedEvent: EVENT,
      agentIds: ['steady', 'starved', 'dropped', 'failed', 'never-polled'],
    });
    expect(report.lateRounds).to.equal(0);
    expect(report.overdueAgents).to.equal(3);
    expect(lateRoundsTarget(report)).to.equal('MISSED');
  });

  it('does not call the no-late-rounds target met when no round could be timed', function () {
    const report = analyseRoundTiming({
      rounds: [],
      requestTime: () => undefined,
      quoteIntervalSeconds: 2,
      from: 0,
      to: 10_000,
      tampered: new Map(),
      expectedEvent: EVENT,
    });
    expect(report.timedRounds).to.equal(0);
    expect(lateRoundsTarget(report)).to.equal('NOT MEASURED');
  });

  it('calls the target missed, not unmeasured, when the verifier polled no agent in the window', function () {
    // A stalled verifier: its last rounds came before the window, none in it, so none could be timed;
    // every agent is overdue, which is a miss however few rounds were timed.
    const report = analyseRoundTiming({
      rounds: [round('a', -1000, 'a1'), round('b', -900, 'b1')],
      requestTime: () => undefined,
      quoteIntervalSeconds: 2,
      from: 0,
      to: 10_000,
      tampered: new Map(),
      expectedEvent: EVENT,
      agentIds: ['a', 'b'],
    });
    expect(report.timedRounds).to.equal(0);
    expect(report.overdueAgents).to.equal(2);
    expect(lateRoundsTarget(report)).to.equal('MISSED');
  });

  it('takes nearest-rank percentiles', function () {
    expect(percentiles([])).to.equal(undefined);
    const values = Array.from({ length: 100 }, (_, i) => 100 - i);
    expect(percentiles(values)).to.deep.equal({ p50: 50, p99: 99, max: 100 });
    expect(percentiles([7])).to.deep.equal({ p50: 7, p99: 7, max: 7 });
  });
});
