import { expect } from 'chai';
import { backoffWaitMs, namedWaitMs } from '../../lib/agent/push/failure-wait.js';
import { PUSH_BACKOFF_DEFAULTS } from '../../lib/agent/push/push-agent.js';
import { verifierOutageDeadline } from '../../lib/attestation/push-failure-decision.js';

/** A `random` that returns `value` every time. */
const always = (value: number) => (): number => value;
/** The largest number `Math.random` returns. */
const NEARLY_1 = 1 - Number.EPSILON;

describe('push agent failure waits: jitter and bounds', function () {
  it('draws a back-off wait uniformly from 0.75 … 1.25 times the computed one', function () {
    expect(backoffWaitMs(10_000, always(0))).to.equal(7_500);
    expect(backoffWaitMs(10_000, always(0.5))).to.equal(10_000);
    expect(backoffWaitMs(10_000, always(NEARLY_1))).to.be.within(12_499, 12_500);
    expect(backoffWaitMs(300_000, always(NEARLY_1)), 'the 300 s cap too, so a fleet at the cap is spread as well').to.be.within(374_999, 375_000);
  });

  it('never waits less than 1 s, whatever the options gave: 0, a negative number, NaN', function () {
    for (const computed of [0, 1, 100, 799, -5, Number.NaN]) {
      for (const draw of [0, 0.5, NEARLY_1]) {
        expect(backoffWaitMs(computed, always(draw)), `${computed} ms drawn at ${draw}`).to.equal(1_000);
      }
    }
    expect(backoffWaitMs(1_200, always(0)), '1.2 s drawn at its lowest, 0.9 s').to.equal(1_000);
  });

  it('never waits more than 1 h, so Infinity does not overflow setTimeout into a hot loop', function () {
    expect(backoffWaitMs(Number.POSITIVE_INFINITY, always(0))).to.equal(3_600_000);
    expect(backoffWaitMs(2 ** 40, always(0.5))).to.equal(3_600_000);
  });

  it('a wait the verifier named is only lengthened, by up to 25 %, and is never below 1 s', function () {
    expect(namedWaitMs(30_000, always(0))).to.equal(30_000);
    expect(namedWaitMs(30_000, always(0.5))).to.equal(33_750);
    expect(namedWaitMs(30_000, always(NEARLY_1))).to.be.within(37_499, 37_500);
    expect(namedWaitMs(0, always(0))).to.equal(1_000);
  });

  it('with Math.random, waits after the same failure differ (a fleet does not retry in step)', function () {
    const draws = Array.from({ length: 200 }, () => backoffWaitMs(10_000));
    expect(draws.every((ms) => ms >= 7_500 && ms <= 12_500), 'every draw within 7.5 … 12.5 s').to.equal(true);
    // 200 draws all within 9 … 11 s has a chance of 0.4^200.
    expect(Math.min(...draws)).to.be.below(9_000);
    expect(Math.max(...draws)).to.be.above(11_000);
    expect(new Set(draws).size).to.be.above(190);
  });

  it("the verifier's outage allowance covers the longest wait the agent draws, before and at the back-off cap", function () {
    const timing = { timeoutSeconds: 60, firstAttestationGraceSeconds: 30 };
    for (const outageSeconds of [10, 100, 1_000, 10_000]) {
      const outage = { from: 1_000_000, to: 1_000_000 + outageSeconds, downSeconds: outageSeconds };
      const computedMs = Math.min(outageSeconds * 1000, PUSH_BACKOFF_DEFAULTS.maxDelayMs);
      const longestWaitSeconds = backoffWaitMs(computedMs, always(NEARLY_1)) / 1000;
      expect(verifierOutageDeadline(outage, timing), `an outage of ${outageSeconds} s`).to.be.at.least(outage.to + 60 + 30 + longestWaitSeconds);
    }
  });
});
