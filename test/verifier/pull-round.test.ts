import { scriptedPolledAgent } from './helpers/scripted-polled-agent.js';
import { expect } from 'chai';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { KeylimeHttpError, ServiceUnreachableError } from '../../lib/http/client-errors.js';
import type { IntegrityQuoteRequest } from '../../lib/agent/agent-client.js';
import type { PolledAgent } from '../../lib/verifier/polled-agent.js';
import type { PullDecision } from '../../lib/attestation/pull-decision.js';
import { runPullRound } from '../../lib/verifier/pull-round.js';
import { FakeAgent } from '../attestation/fake-agent.js';
import { ROUND_TEST_SETTINGS } from './helpers/pull-settings.js';

const settings = ROUND_TEST_SETTINGS;

/** Seconds to the next round, or undefined when polling stops. */
function nextIn(decision: PullDecision): number | undefined {
  return decision.next.kind === 'poll' ? decision.next.inSeconds : undefined;
}

/** A connection double: answers from a FakeAgent, or fails with the queued errors first. */
class ScriptedConnection {
  readonly requests: IntegrityQuoteRequest[] = [];
  readonly vkeys: string[] = [];
  quoteErrors: Error[] = [];
  vErrors: Error[] = [];

  constructor(private readonly agent: FakeAgent) {}

  integrityQuoteReply(request: IntegrityQuoteRequest): Promise<unknown> {
    this.requests.push(request);
    const error = this.quoteErrors.shift();
    if (error !== undefined) {
      return Promise.reject(error);
    }
    return Promise.resolve(this.agent.reply({ nonce: request.nonce, mask: Number.parseInt(request.mask, 16), imaEntry: request.imaEntry, partial: request.partial }));
  }

  judgeIntegrityQuote<T>(request: IntegrityQuoteRequest, judge: (results: unknown) => T | Promise<T>): Promise<T> {
    return this.integrityQuoteReply(request).then(judge);
  }

  /** What `GET /version` answers; an Error is thrown. */
  versionResults: unknown = { supported_versions: ['2.1', '2.2', '2.3', '2.4', '2.5', '2.6'] };
  readonly versionsUsed: string[] = [];

  versionReply(): Promise<unknown> {
    return this.versionResults instanceof Error ? Promise.reject(this.versionResults) : Promise.resolve(this.versionResults);
  }

  useApiVersion(version: string): void {
    this.versionsUsed.push(version);
  }

  sendVkey(encryptedKey: string): Promise<void> {
    const error = this.vErrors.shift();
    if (error !== undefined) {
      return Promise.reject(error);
    }
    this.vkeys.push(encryptedKey);
    return Promise.resolve();
  }

  close(): void {}
}

function polledAgent(fake: FakeAgent, connection: ScriptedConnection, v: string | null): PolledAgent {
  return scriptedPolledAgent({ agentId: 'a1', fake, connection, mask: '0x400', v, apiVersion: '2.0' });
}

const unreachable = (): ServiceUnreachableError => new ServiceUnreachableError('https://agent', 'refused', 'ECONNREFUSED');

/** One process here: the rounds stamp on its clock. */
const hostNow = (): number => Date.now() / 1000;

describe('pull round (spec §6.2)', function () {
  const fake = new FakeAgent();
  const v = Buffer.alloc(32, 9).toString('base64');

  it('START: a full request (partial=0, fresh 20-character nonce), a pass, V delivered in the same round, then partial=1', async function () {
    const connection = new ScriptedConnection(fake);
    const agent = polledAgent(fake, connection, v);
    const first = await runPullRound(agent, settings, hostNow);
    expect(connection.requests[0]).to.deep.include({ partial: false, imaEntry: 0, mask: '0x400' });
    expect(connection.requests[0]?.nonce).to.match(/^[A-Za-z0-9]{20}$/);
    expect(connection.vkeys).to.have.length(1);
    expect(Buffer.from(connection.vkeys[0] ?? '', 'base64')).to.have.length(256);
    expect(first.state.operationalState).to.equal(OperationalState.GET_QUOTE);
    expect(first.history).to.deep.include({ outcome: 'pass', imaMlEntry: 0, imaEntriesReceived: 1, failures: [] });
    expect(nextIn(first)).to.equal(2);
    agent.state = first.state;
    const second = await runPullRound(agent, settings, hostNow);
    expect(connection.requests[1]?.partial).to.equal(true);
    expect(connection.requests[1]?.nonce).to.not.equal(connection.requests[0]?.nonce);
    expect(second.state.attestationCount).to.equal(2);
    expect(connection.vkeys).to.have.length(1);
  });

  it('a round that throws before its request (a clock that fails) rejects: it never throws to its caller', async function () {
    const connection = new ScriptedConnection(fake);
    const failingClock = (): number => {
      throw new Error('clock unreadable');
    };
    let round: Promise<PullDecision> | undefined;
    expect(() => (round = runPullRound(polledAgent(fake, connection, v), settings, failingClock)), 'a synchronous throw').to.not.throw();
    const error = await (round as Promise<PullDecision>).then(
      () => undefined,
      (reason: unknown) => reason,
    );
    expect(error).to.be.instanceOf(Error).with.property('message', 'clock unreadable');
    expect(connection.requests).to.have.length(0);
  });

  it('V unreachable: Provide V (retry), then a V-only round that records no verdict', async function () {
    const connection = new ScriptedConnection(fake);
    connection.vErrors = [unreachable()];
    const agent = polledAgent(fake, connection, v);
    const first = await runPullRound(agent, settings, hostNow);
    expect(first.state.operationalState).to.equal(OperationalState.PROVIDE_V_RETRY);
    expect(first.history?.outcome).to.equal('pass');
    expect(nextIn(first)).to.equal(2);
    agent.state = first.state;
    agent.retries = first.retries;
    const second = await runPullRound(agent, settings, hostNow);
    expect(connection.requests).to.have.length(1);
    expect(second.state.operationalState).to.equal(OperationalState.GET_QUOTE);
    expect(second.history).to.equal(undefined);
    expect(second.retries).to.equal(0);
  });

  it('no V enrolled: nothing is posted and the agent goes straight to Get Quote', async function () {
    const connection = new ScriptedConnection(fake);
    const result = await runPullRound(polledAgent(fake, connection, null), settings, hostNow);
    expect(connection.vkeys).to.deep.equal([]);
    expect(result.state.operationalState).to.equal(OperationalState.GET_QUOTE);
  });

  it('unreachable: retries after retryInterval ** n with full requests, then FAILED with internal.verifier.not_reachable', async function () {
    const connection = new ScriptedConnection(fake);
    connection.quoteErrors = [unreachable(), new KeylimeHttpError('https://agent', 500, 'Internal Server Error', {}), unreachable()];
    const agent = polledAgent(fake, connection, null);
    agent.state = { ...agent.state, operationalState: OperationalState.GET_QUOTE, publicKey: fake.nkPem };
    const delays: (number | undefined)[] = [];
    const states: number[] = [];
    for (let i = 0; i < 3; i += 1) {
      const outcome = await runPullRound(agent, settings, hostNow);
      agent.state = outcome.state;
      agent.retries = outcome.retries;
      delays.push(nextIn(outcome));
      states.push(outcome.state.operationalState);
      if (i < 2) {
        expect(outcome.history).to.deep.include({ outcome: 'retry', failures: [] });
      } else {
        expect(outcome.history?.outcome).to.equal('fail');
        expect(outcome.history?.failures[0]).to.deep.include({ event_id: 'internal.verifier.not_reachable', severity_label: 'emergency', recoverable: false });
      }
    }
    expect(delays).to.deep.equal([2, 4, undefined]);
    expect(states).to.deep.equal([OperationalState.GET_QUOTE_RETRY, OperationalState.GET_QUOTE_RETRY, OperationalState.FAILED]);
    expect(connection.requests.map((r) => r.partial)).to.deep.equal([true, false, false]);
    expect(agent.state).to.deep.include({ severityLevel: 6, lastEventId: 'internal.verifier.not_reachable' });
  });

  it('another HTTP error is FAILED at once with internal.verifier.no_quote; a bad reply is Invalid Quote', async function () {
    const connection = new ScriptedConnection(fake);
    connection.quoteErrors = [new KeylimeHttpError('https://agent', 403, 'Forbidden', {})];
    const failed = await runPullRound(polledAgent(fake, connection, null), settings, hostNow);
    expect(failed.state.operationalState).to.equal(OperationalState.FAILED);
    expect(failed.history?.failures.map((f) => f.event_id)).to.deep.equal(['internal.verifier.no_quote']);
    expect(nextIn(failed)).to.equal(undefined);

    const liar = new ScriptedConnection(fake);
    liar.integrityQuoteReply = () => Promise.resolve({ quote: 42 });
    const invalid = await runPullRound(polledAgent(fake, liar, null), settings, hostNow);
    expect(invalid.state.operationalState).to.equal(OperationalState.INVALID_QUOTE);
    expect(invalid.history?.failures.map((f) => f.event_id)).to.deep.equal(['qoute_validation.invalid_data']);
    expect(nextIn(invalid)).to.equal(undefined);
  });
  it('an agent that refuses the API version: GET /version, the highest common version, the quote asked again at once', async function () {
    const connection = new ScriptedConnection(fake);
    connection.quoteErrors = [new KeylimeHttpError('https://agent/v2.0/quotes/integrity', 400, 'API version not supported: v2.0', {})];
    const agent = polledAgent(fake, connection, null);
    const result = await runPullRound(agent, settings, hostNow);
    expect(connection.versionsUsed).to.deep.equal(['2.6']);
    expect(agent.apiVersion).to.equal('2.6');
    expect(connection.requests).to.have.length(2);
    expect(result.history?.outcome).to.equal('pass');
  });

  it('a refused version with no common one, an unanswered /version, or a downgrade of an attested agent: FAILED with version_not_supported', async function () {
    for (const [versionResults, attestationCount, reason] of [
      [{ supported_versions: ['3.0'] }, 0, 'the agent names no API version the verifier speaks'],
      [new Error('no /version'), 0, 'the agent names no API version the verifier speaks'],
      [{ supported_versions: ['2.1', '2.2'] }, 3, 'refusing to downgrade an attested agent from 2.6 to 2.2'],
    ] as const) {
      const connection = new ScriptedConnection(fake);
      connection.versionResults = versionResults;
      connection.quoteErrors = [new KeylimeHttpError('https://agent', 400, 'API Version not supported', {})];
      const agent = polledAgent(fake, connection, null);
      agent.apiVersion = attestationCount > 0 ? '2.6' : '2.0';
      agent.state = { ...agent.state, operationalState: OperationalState.GET_QUOTE, attestationCount, publicKey: fake.nkPem };
      const result = await runPullRound(agent, settings, hostNow);
      expect(result.state.operationalState, reason).to.equal(OperationalState.FAILED);
      expect(result.history?.failures[0]).to.deep.include({ event_id: 'internal.verifier.version_not_supported' });
      expect(JSON.stringify(result.history?.failures[0]?.context)).to.contain(reason);
      expect(connection.versionsUsed).to.deep.equal([]);
    }
  });

  it('a second refusal after renegotiating is not renegotiated again: FAILED with no_quote', async function () {
    const connection = new ScriptedConnection(fake);
    const refusal = (): KeylimeHttpError => new KeylimeHttpError('https://agent', 400, 'API version not supported: v2.6', {});
    connection.quoteErrors = [refusal(), refusal()];
    const result = await runPullRound(polledAgent(fake, connection, null), settings, hostNow);
    expect(connection.versionsUsed).to.deep.equal(['2.6']);
    expect(result.state.operationalState).to.equal(OperationalState.FAILED);
    expect(result.history?.failures[0]?.event_id).to.equal('internal.verifier.no_quote');
  });
});
