import { expect } from 'chai';
import { KeylimeHttpError, ServiceUnreachableError } from '../../lib/http/client-errors.js';
import { enrolRetryingCutRequests } from '../../lib/fleet/enrol-retries.js';
import { Http1ParseError } from '../../lib/http/http1-response-parser.js';

const URL = 'https://127.0.0.1:8881/v2.6/agents/a';
const reset = (): ServiceUnreachableError =>
  new ServiceUnreachableError(URL, 'network', 'ECONNRESET: read ECONNRESET', { cause: Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }) });
const closedUnanswered = (): ServiceUnreachableError =>
  new ServiceUnreachableError(URL, 'network', 'connection closed before the response head', { cause: new Http1ParseError('connection closed before the response head', true) });
const closedMidHead = (): ServiceUnreachableError =>
  new ServiceUnreachableError(URL, 'network', 'connection closed before the response head', { cause: new Http1ParseError('connection closed before the response head', false) });
const timedOut = (url = URL): ServiceUnreachableError => new ServiceUnreachableError(url, 'timeout', 'no complete reply within 30000 ms');
const exists = (): KeylimeHttpError => new KeylimeHttpError(URL, 409, 'Agent already exists', {});

/** An enrolment that fails with `failures` in turn, then succeeds; counts its calls. */
function enrolment(...failures: Error[]): { run: () => Promise<void>; calls: () => number } {
  let calls = 0;
  return {
    run: async () => {
      const failure = failures[calls];
      calls += 1;
      if (failure !== undefined) throw failure;
    },
    calls: () => calls,
  };
}

describe('fleet: an enrolment whose request was cut before an answer is sent again', function () {
  it('sends again after a reset, and takes "409 exists" then as the first attempt having got through', async function () {
    const retried = enrolment(reset());
    await enrolRetryingCutRequests(retried.run);
    expect(retried.calls()).to.equal(2);
    const landed = enrolment(reset(), exists());
    await enrolRetryingCutRequests(landed.run);
    expect(landed.calls()).to.equal(2);
  });

  it('sends again after a connection closed before any byte of the answer, but not after one closed mid-answer', async function () {
    const unanswered = enrolment(closedUnanswered());
    await enrolRetryingCutRequests(unanswered.run);
    expect(unanswered.calls()).to.equal(2);
    const midHead = enrolment(closedMidHead());
    const error = await enrolRetryingCutRequests(midHead.run).then(
      () => undefined,
      (thrown: unknown) => thrown,
    );
    expect(error).to.be.instanceOf(ServiceUnreachableError);
    expect(midHead.calls()).to.equal(1);
  });

  it('throws any other failure at once, a 409 on the first attempt, a 409 after a reset of another request, and a second reset', async function () {
    const registrarReset = new ServiceUnreachableError('https://127.0.0.1:8891/v2.6/agents/a', 'network', 'ECONNRESET', { cause: Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }) });
    for (const failures of [[new ServiceUnreachableError(URL, 'refused', 'ECONNREFUSED')], [exists()], [reset(), reset()], [reset(), new Error('boom')], [registrarReset, exists()]]) {
      const run = enrolment(...failures);
      const error = await enrolRetryingCutRequests(run.run).then(
        () => undefined,
        (thrown: unknown) => thrown,
      );
      expect(error, failures.map((f) => f.message).join(', ')).to.equal(failures[failures.length - 1]);
      expect(run.calls()).to.equal(failures.length);
    }
  });

  it('sends again after each timeout, up to one resend per back-off, and takes "409 exists" for a timed-out URL as enrolled', async function () {
    const backoff = { timeoutBackoffMs: [1, 1, 1] };
    const recovered = enrolment(timedOut(), timedOut(), timedOut());
    await enrolRetryingCutRequests(recovered.run, backoff);
    expect(recovered.calls()).to.equal(4);
    const landed = enrolment(timedOut(), exists());
    await enrolRetryingCutRequests(landed.run, backoff);
    expect(landed.calls()).to.equal(2);
    const afterReset = enrolment(reset(), timedOut());
    await enrolRetryingCutRequests(afterReset.run, backoff);
    expect(afterReset.calls()).to.equal(3);
  });

  it('throws a timeout past the back-offs, and a 409 after a timeout of another request', async function () {
    const registrarTimeout = timedOut('https://127.0.0.1:8891/v2.6/agents/a');
    for (const failures of [[timedOut(), timedOut(), timedOut(), timedOut()], [registrarTimeout, exists()]]) {
      const run = enrolment(...failures);
      const error = await enrolRetryingCutRequests(run.run, { timeoutBackoffMs: [1, 1, 1] }).then(
        () => undefined,
        (thrown: unknown) => thrown,
      );
      expect(error).to.equal(failures[failures.length - 1]);
      expect(run.calls()).to.equal(failures.length);
    }
  });

  it('ends a back-off wait when the signal aborts', async function () {
    const stop = new AbortController();
    const run = enrolment(timedOut());
    const waiting = enrolRetryingCutRequests(run.run, { timeoutBackoffMs: [3_600_000], signal: stop.signal }).then(
      () => undefined,
      (thrown: unknown) => thrown,
    );
    stop.abort(new Error('stopped'));
    expect(((await waiting) as Error).message).to.equal('stopped');
    expect(run.calls()).to.equal(1);
  });
});
