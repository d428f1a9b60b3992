import { expect } from 'chai';
import { AttestationServiceUnavailable } from '../../interfaces/errors.js';
import { judgeVerifierStatus, type StatusVerdict, type VerifierAgentView } from '../../lib/attestation/operator-decision.js';
import { waitForFinalVerdict } from '../../drivers/keylime/status-wait.js';

const BASE: VerifierAgentView = {
  operationalState: 3,
  attestationCount: 1,
  attestationStatus: 'PASS',
  lastEventId: null,
  severityLevel: null,
  failureEventIds: [],
  failureReasons: [],
  // Read when each case spreads BASE: a fresh success, however long the suite has run.
  get lastSuccessfulAttestation(): number {
    return Math.floor(Date.now() / 1000);
  },
  attestationPeriodSeconds: 2,
  trusted: undefined,
  freshnessBoundSeconds: undefined,
};

describe('keylime driver: verdict from the verifier status', function () {
  it('passes only after a successful attestation, in a healthy state', function () {
    expect(judgeVerifierStatus(BASE)).to.deep.equal({ kind: 'pass' });
    expect(judgeVerifierStatus({ ...BASE, operationalState: 5 })).to.deep.equal({ kind: 'pass' });
    expect(judgeVerifierStatus({ ...BASE, attestationCount: 0 })).to.deep.equal({
      kind: 'pending',
      why: 'state "Get Quote", 0 successful attestation(s)',
    });
  });

  it('a stale PASS is pending: Keylime\'s fields (last_successful_attestation, attestation_period) or ours (trusted, freshness_bound)', function () {
    const now = Date.now() / 1000;
    const keylime = { ...BASE, lastSuccessfulAttestation: Math.floor(now) - 70 };
    // Keylime's defaults: 2 × 2 s + 62 s of retries = 66 s.
    expect(judgeVerifierStatus(keylime, { now }).kind).to.equal('pending');
    expect(judgeVerifierStatus({ ...keylime, lastSuccessfulAttestation: Math.floor(now) - 60 }, { now }).kind).to.equal('pass');
    expect(judgeVerifierStatus({ ...keylime, lastSuccessfulAttestation: Math.floor(now) - 60 }, { now, staleAfterSeconds: 10 }).kind).to.equal('pending');
    expect(judgeVerifierStatus({ ...keylime, lastSuccessfulAttestation: Math.floor(now) - 60 }, { now, retryBudgetSeconds: 5 }).kind).to.equal('pending');
    expect(judgeVerifierStatus({ ...BASE, lastSuccessfulAttestation: 0 }, { now }).kind).to.equal('pending');
    expect(judgeVerifierStatus({ ...BASE, freshnessBoundSeconds: 3, lastSuccessfulAttestation: Math.floor(now) - 6 }, { now }).kind).to.equal('pending');
    expect(judgeVerifierStatus({ ...BASE, trusted: false }, { now }).kind).to.equal('pending');
    const push = { ...BASE, operationalState: null, lastSuccessfulAttestation: Math.floor(now) - 600 };
    expect(judgeVerifierStatus(push, { now }).kind).to.equal('pending');
  });

  for (const state of [0, 1, 2, 4, 6]) {
    it(`waits in state ${state}`, function () {
      expect(judgeVerifierStatus({ ...BASE, operationalState: state }).kind).to.equal('pending');
    });
  }

  it('fails in states 7, 9 and 10 with the last event id, severity and history', function () {
    const verdict = judgeVerifierStatus({
      ...BASE,
      operationalState: 9,
      lastEventId: 'ima.validation.ima-ng.not_in_allowlist',
      severityLevel: 6,
      failureEventIds: ['ima.validation.ima-ng.not_in_allowlist', 'ima.pcr_mismatch'],
      failureReasons: ['File not found in allowlist: /tmp/evil'],
    });
    expect(verdict).to.deep.equal({
      kind: 'fail',
      reasons: [
        'the verifier marked the agent "Invalid Quote" (last event ima.validation.ima-ng.not_in_allowlist, severity level 6)',
        'File not found in allowlist: /tmp/evil',
      ],
      eventIds: ['ima.validation.ima-ng.not_in_allowlist', 'ima.pcr_mismatch'],
    });
    expect(judgeVerifierStatus({ ...BASE, operationalState: 7 })).to.deep.include({
      reasons: ['the verifier marked the agent "Failed"'],
    });
    expect(judgeVerifierStatus({ ...BASE, operationalState: 10 }).kind).to.equal('fail');
    expect(judgeVerifierStatus({ ...BASE, operationalState: 8 })).to.deep.equal({
      kind: 'fail',
      reasons: ['the agent is being removed from the verifier (state "Terminated")'],
      eventIds: [],
    });
  });

  it('reads attestation_status for push agents', function () {
    const push = { ...BASE, operationalState: null };
    expect(judgeVerifierStatus(push)).to.deep.equal({ kind: 'pass' });
    expect(judgeVerifierStatus({ ...push, attestationStatus: 'PENDING', attestationCount: 0 }).kind).to.equal('pending');
    expect(judgeVerifierStatus({ ...push, attestationStatus: 'FAIL' }).kind).to.equal('fail');
    expect(judgeVerifierStatus({ ...push, attestationStatus: 'TIMEOUT' })).to.deep.include({
      reasons: ['the agent stopped sending evidence (verifier status TIMEOUT)'],
    });
  });

  it('fails at once an agent in state 3 whose attestation_status is FAIL or TIMEOUT (a failed push agent)', function () {
    expect(judgeVerifierStatus({ ...BASE, attestationStatus: 'FAIL', lastEventId: 'pcr_mismatch' })).to.deep.equal({
      kind: 'fail',
      reasons: ['the verifier reports attestation failed (last event pcr_mismatch)'],
      eventIds: ['pcr_mismatch'],
    });
    expect(judgeVerifierStatus({ ...BASE, attestationStatus: 'TIMEOUT' })).to.deep.include({
      kind: 'fail',
      reasons: ['the agent stopped sending evidence (verifier status TIMEOUT)'],
    });
  });

  it('does not trust a last success dated more than 5 s ahead of the clock it is judged on, nor blame the node for it', function () {
    const now = Math.floor(Date.now() / 1000);
    expect(judgeVerifierStatus({ ...BASE, lastSuccessfulAttestation: now + 5 }, { now }).kind).to.equal('pass');
    expect(judgeVerifierStatus({ ...BASE, lastSuccessfulAttestation: now + 30 }, { now })).to.deep.equal({
      kind: 'pending',
      why: "last_successful_attestation is 30 s ahead of this host's clock (the reply has no Date), more than 5 s: not trusted",
    });
  });

  it('does not read an attestation_status it does not know as a PASS, in any state', function () {
    for (const status of ['fail', 'Failed', 'FAILED', 'ERROR', 'PENDING', '']) {
      for (const operationalState of [3, 5]) {
        const verdict = judgeVerifierStatus({ ...BASE, operationalState, attestationStatus: status });
        expect(verdict.kind, `${status} in state ${operationalState}`).to.equal('pending');
      }
    }
    // Keylime before API 2.5 sends no attestation_status: the state code and the age decide.
    expect(judgeVerifierStatus({ ...BASE, attestationStatus: undefined }).kind).to.equal('pass');
  });

  it('bounds what a reply may say the staleness bound is: a day at most', function () {
    const now = Math.floor(Date.now() / 1000);
    const yearOld = { ...BASE, lastSuccessfulAttestation: now - 365 * 86_400 };
    expect(judgeVerifierStatus({ ...yearOld, freshnessBoundSeconds: 1e12 }, { now }).kind).to.equal('pending');
    expect(judgeVerifierStatus({ ...yearOld, attestationPeriodSeconds: 999_999_999 }, { now }).kind).to.equal('pending');
    expect(judgeVerifierStatus({ ...yearOld, attestationPeriodSeconds: 1e300 }, { now }).kind).to.equal('pending');
    // A long bound that a verifier may really have (an hour's interval) still counts.
    expect(judgeVerifierStatus({ ...BASE, lastSuccessfulAttestation: now - 7000, attestationPeriodSeconds: 3600 }, { now }).kind).to.equal('pass');
  });

  it('judges a node the operator configured as push by its last verdict, whatever its state code', function () {
    const push = { now: Math.floor(Date.now() / 1000), agentMode: 'push' as const };
    // Keylime's push records sit in "Get Quote" (3): without attestation_status there is no verdict to trust.
    expect(judgeVerifierStatus({ ...BASE, attestationStatus: undefined }, push)).to.deep.equal({
      kind: 'pending',
      why: 'push agent status not given, 1 successful attestation(s)',
    });
    expect(judgeVerifierStatus({ ...BASE, attestationStatus: 'PENDING' }, push).kind).to.equal('pending');
    expect(judgeVerifierStatus(BASE, push)).to.deep.equal({ kind: 'pass' });
    expect(judgeVerifierStatus({ ...BASE, operationalState: 9 }, push).kind).to.equal('fail');
  });

  it('judges the age of the last success on the verifier\'s clock: a healthy agent passes under any skew up to 15 min, a stale PASS never', function () {
    const now = Math.floor(Date.now() / 1000);
    for (const skew of [5, 60, 600, -5, -60, -600]) {
      const verifierNow = now + skew;
      const rule = { now, verifierNow };
      // Attested a second ago by the verifier's clock, which stamped it.
      expect(judgeVerifierStatus({ ...BASE, lastSuccessfulAttestation: verifierNow - 1 }, rule), `healthy, verifier clock ${skew} s off`).to.deep.equal({ kind: 'pass' });
      expect(judgeVerifierStatus({ ...BASE, lastSuccessfulAttestation: verifierNow - 100 }, rule), `stale, verifier clock ${skew} s off`).to.deep.equal({
        kind: 'pending',
        why: 'last successful attestation 100 s ago, older than the 66 s bound (stale PASS)',
      });
      expect(judgeVerifierStatus({ ...BASE, lastSuccessfulAttestation: verifierNow + 10 }, rule), `future, verifier clock ${skew} s off`).to.deep.equal({
        kind: 'pending',
        why: "last_successful_attestation is 10 s ahead of the verifier's clock (its reply's Date), more than 5 s: not trusted",
      });
    }
    // The verifier's clock 600 s ahead of ours: a success 630 s old by its clock, 30 s old by ours, is stale.
    expect(judgeVerifierStatus({ ...BASE, lastSuccessfulAttestation: now + 600 - 630 }, { now, verifierNow: now + 600 }).kind).to.equal('pending');
  });

  it('trusts no time of a reply whose Date is more than 15 min from this host\'s clock', function () {
    const now = Math.floor(Date.now() / 1000);
    expect(judgeVerifierStatus({ ...BASE, lastSuccessfulAttestation: now + 1000 }, { now, verifierNow: now + 1000 })).to.deep.equal({
      kind: 'pending',
      why: "the verifier's clock (its reply's Date) is 1000 s ahead of this host's, more than the 900 s tolerated: its last_successful_attestation is not trusted (synchronise the clocks)",
    });
    expect(judgeVerifierStatus({ ...BASE, lastSuccessfulAttestation: now - 1000 }, { now, verifierNow: now - 1000 }).kind).to.equal('pending');
  });

  it('judges a reply without a Date on this host\'s clock: the clocks must agree', function () {
    const now = Math.floor(Date.now() / 1000);
    expect(judgeVerifierStatus({ ...BASE, lastSuccessfulAttestation: now - 3 }, { now }).kind).to.equal('pass');
    expect(judgeVerifierStatus({ ...BASE, lastSuccessfulAttestation: now - 100 }, { now }).kind).to.equal('pending');
    expect(judgeVerifierStatus({ ...BASE, lastSuccessfulAttestation: now + 60 }, { now })).to.deep.equal({
      kind: 'pending',
      why: "last_successful_attestation is 60 s ahead of this host's clock (the reply has no Date), more than 5 s: not trusted",
    });
  });
});

describe('keylime driver: waiting for a verdict', function () {
  const never = new AbortController().signal;
  const options = { timeoutMs: 300, intervalMs: 20, signal: never, isTransient: (error: unknown) => error instanceof TypeError };

  it('returns the first final verdict', async function () {
    const answers: StatusVerdict[] = [{ kind: 'pending', why: 'one' }, { kind: 'pending', why: 'two' }, { kind: 'pass' }];
    let reads = 0;
    // A deadline no CI stall reaches (a 300 ms one passed while the host stalled this process between reads).
    const verdict = await waitForFinalVerdict(async () => answers[reads++] as StatusVerdict, { ...options, timeoutMs: 60_000 });
    expect(verdict).to.deep.equal({ kind: 'pass' });
    expect(reads).to.equal(3);
  });

  it('retries transient errors and gives up at the deadline saying what it last saw', async function () {
    // The retries are counted against a deadline no CI stall reaches: with 300 ms, a host that stalled this
    // process after the first read left no time for another.
    let reads = 0;
    const verdict = await waitForFinalVerdict(async () => {
      if (++reads <= 3) throw new TypeError('verifier unreachable');
      return { kind: 'pass' };
    }, { ...options, timeoutMs: 60_000 });
    expect(verdict).to.deep.equal({ kind: 'pass' });
    expect(reads).to.equal(4);
    const started = Date.now();
    try {
      await waitForFinalVerdict(async () => {
        throw new TypeError('verifier unreachable');
      }, options);
      expect.fail('expected a timeout');
    } catch (error) {
      expect(error).to.be.instanceOf(AttestationServiceUnavailable);
      expect((error as Error).message).to.equal('attestation service unavailable: no verdict from the verifier within 0.3 s (last: verifier unreachable)');
    }
    // A wait that never gave up would run into the test's timeout (60 s); 10 s leaves room for a ~3 s stall.
    expect(Date.now() - started).to.be.lessThan(10_000);
  });

  it('rethrows other errors at once and honours the abort signal', async function () {
    const boom = new RangeError('bug');
    let caught: unknown;
    await waitForFinalVerdict(() => Promise.reject(boom), options).catch((error: unknown) => (caught = error));
    expect(caught).to.equal(boom);
    const controller = new AbortController();
    const reason = new Error('cancelled');
    setTimeout(() => controller.abort(reason), 30);
    await waitForFinalVerdict(async () => ({ kind: 'pending', why: 'x' }), { ...options, timeoutMs: 60_000, signal: controller.signal }).catch(
      (error: unknown) => (caught = error),
    );
    expect(caught).to.equal(reason);
  });

  it('does not wait past the deadline for a read that never answers (a stalled verifier), saying what it last saw', async function () {
    const started = Date.now();
    let reads = 0;
    const hanging = (): Promise<StatusVerdict> => (++reads === 1 ? Promise.resolve({ kind: 'pending', why: 'state "Start"' }) : new Promise(() => undefined));
    // A deadline of 4 s: a CI host that stalls this process for the whole deadline after the first read
    // (seen with 1.5 s) ends the wait before the second read starts, and the test would not test the hang.
    const error = await waitForFinalVerdict(hanging, { ...options, timeoutMs: 4000, intervalMs: 100 }).catch((caught: unknown) => caught);
    expect(reads, 'the second read was begun and hung').to.equal(2);
    expect(error).to.be.instanceOf(AttestationServiceUnavailable);
    expect((error as Error).message).to.contain('within 4 s (last: state "Start"; the last read had no answer yet)');
    // The deadline is 4 s plus at most 1 s of grace for a read begun at it; the read would hang for ever. Generous: the machine is noisy.
    expect(Date.now() - started).to.be.lessThan(12_000);
  });

  it('keeps its deadline when the wall clock steps back during the wait (the deadline is on the monotonic clock)', async function () {
    this.timeout(30_000);
    const realNow = Date.now.bind(Date);
    // Put back after 12 s even if the wait would run on (a wall-clock deadline): then it ends, late.
    const putBack = setTimeout(() => (Date.now = realNow), 12_000);
    const started = performance.now();
    let reads = 0;
    try {
      const error = await waitForFinalVerdict(
        async () => {
          // From the second read on, the wall clock reads an hour earlier (an NTP step back).
          if (++reads === 2) Date.now = () => realNow() - 3_600_000;
          return { kind: 'pending', why: 'state "Get Quote"' };
        },
        { ...options, timeoutMs: 1000, intervalMs: 50 },
      ).catch((caught: unknown) => caught);
      expect(error).to.be.instanceOf(AttestationServiceUnavailable);
    } finally {
      clearTimeout(putBack);
      Date.now = realNow;
    }
    // Generous: the machine is noisy; with the wall clock the wait would last until the clock is put back (12 s).
    expect(performance.now() - started).to.be.lessThan(10_000);
  });

  it('rejects with the abort reason during a read that never answers', async function () {
    const controller = new AbortController();
    const reason = new Error('cancelled');
    setTimeout(() => controller.abort(reason), 30);
    const error = await waitForFinalVerdict(() => new Promise(() => undefined), { ...options, timeoutMs: 60_000, signal: controller.signal }).catch((caught: unknown) => caught);
    expect(error).to.equal(reason);
  });
  it('a read left behind that answers fail or throws later changes nothing: the wait has said "unavailable", and no rejection goes unhandled', async function () {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      for (const late of [
        () => new Promise<StatusVerdict>((resolve) => setTimeout(() => resolve({ kind: 'fail', reasons: ['late'], eventIds: [] }), 1800)),
        () => new Promise<StatusVerdict>((_, reject) => setTimeout(() => reject(new Error('late failure')), 1800)),
      ]) {
        const error = await waitForFinalVerdict(late, { ...options, timeoutMs: 200, intervalMs: 100 }).catch((caught: unknown) => caught);
        expect(error).to.be.instanceOf(AttestationServiceUnavailable);
      }
      await new Promise((resolve) => setTimeout(resolve, 2000));
      expect(unhandled).to.deep.equal([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
