import { expect } from 'chai';
import { readLivenessVerdict } from '../../drivers/keylime/node-identity.js';
import type { StatusVerdict } from '../../lib/attestation/operator-decision.js';
import { BadRemoteReplyError } from '../../lib/http/client-errors.js';
import { validateDto } from '../../lib/http/dto-validation.js';
import type { KeylimeClient } from '../../lib/http/keylime-client.js';
import { LivenessClient, LivenessStatusReply } from '../../lib/verifier/liveness/liveness-client.js';

const NODE = '6b1f2e0d-1e8f-4b68-9f5a-7d8b5f2a3c21';
const AGENT = 'host-1';
/** Now, taken again before each test: the driver reads its own clock, and earlier test files may have run for minutes. */
let NOW = Math.floor(Date.now() / 1000);

/** A verifier's liveness reply for this node's enrolment, `alive` and just seen unless overridden. */
function reply(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    agent_id: AGENT,
    identity_mode: 'id-only',
    trust_level: 'id-only',
    liveness_status: 'alive',
    attestation_status: 'LIVE (no integrity evidence)',
    integrity_evidence: 'integrity evidence unavailable: this node has no TPM (no quote, IMA or measured boot)',
    misses: 0,
    last_seen: NOW,
    last_failure: null,
    metadata: JSON.stringify({ node: NODE }),
    ...overrides,
  };
}

/** A liveness client whose verifier answers `results` (validated as the real client does), its `Date` header at `serverTime`. */
function verifierAnswering(results: Record<string, unknown>, serverTime?: number): LivenessClient {
  const get = (): Promise<unknown> =>
    Promise.resolve({ code: 200, status: 'Success', results: validateDto(LivenessStatusReply, results, 'results'), ...(serverTime === undefined ? {} : { serverTime }) });
  return new LivenessClient({ get } as unknown as KeylimeClient);
}

function verdictOn(results: Record<string, unknown>, serverTime?: number): Promise<StatusVerdict> {
  return readLivenessVerdict(verifierAnswering(results, serverTime), AGENT, NODE);
}

/**
 * An `alive` passes only while its `last_seen` vouches for now, as a TPM agent's PASS does: only the
 * enrolling verifier id's processes run the checks, any process answers the status, so a retired
 * verifier id or a stopped monitor leaves `alive` in place for ever.
 */
describe('keylime driver: a liveness `alive` goes stale', function () {
  beforeEach(function () {
    NOW = Math.floor(Date.now() / 1000);
  });

  it('passes an alive node seen just now', async function () {
    expect(await verdictOn(reply())).to.deep.equal({ kind: 'pass' });
  });

  it('does not pass an alive node last seen 24 h ago: pending, so the wait ends not trusted', async function () {
    const verdict = await verdictOn(reply({ last_seen: NOW - 86_400 }));
    expect(verdict.kind).to.equal('pending');
    expect((verdict as { why: string }).why).to.match(/^last liveness answer 8640\d s ago, older than the 66 s bound \(stale alive\)$/);
  });

  it('does not pass an alive node without last_seen, or seen more than 5 s in the future', async function () {
    expect(await verdictOn(reply({ last_seen: null }))).to.deep.equal({ kind: 'pending', why: 'no last_seen in the liveness status' });
    const ahead = await verdictOn(reply({ last_seen: NOW + 60 }));
    expect(ahead.kind).to.equal('pending');
    expect((ahead as { why: string }).why).to.match(/^last_seen is (59|60) s ahead of this host's clock/);
  });

  it("takes the verifier's freshness_bound, at most a day, and the age on the verifier's clock", async function () {
    expect((await verdictOn(reply({ last_seen: NOW - 300, freshness_bound: 600 }))).kind).to.equal('pass');
    expect((await verdictOn(reply({ last_seen: NOW - 300, freshness_bound: 120 }))).kind).to.equal('pending');
    expect((await verdictOn(reply({ last_seen: NOW - 90_000, freshness_bound: 10 ** 9 }))).kind).to.equal('pending');
    // The verifier's clock 10 min off the driver's: its own reading of last_seen counts, either way.
    expect((await verdictOn(reply({ last_seen: NOW + 600 - 30 }), NOW + 600)).kind).to.equal('pass');
    expect((await verdictOn(reply({ last_seen: NOW - 600 - 30 }), NOW - 600)).kind).to.equal('pass');
    expect((await verdictOn(reply({ last_seen: NOW + 600 - 100 }), NOW + 600)).kind).to.equal('pending');
    // An hour off, nothing in the reply is trusted.
    expect((await verdictOn(reply({ last_seen: NOW + 3600 - 30 }), NOW + 3600)).kind).to.equal('pending');
  });

  it('does not pass what the verifier itself calls stale', async function () {
    expect((await verdictOn(reply({ stale: true, freshness_bound: 600 }))).kind).to.equal('pending');
    const pending = await verdictOn(reply({ liveness_status: 'pending', stale: true, last_seen: NOW - 900, freshness_bound: 600 }));
    expect(pending).to.deep.equal({ kind: 'pending', why: 'the verifier calls its last liveness answer stale (no answer within its 600 s bound)' });
  });

  it("does not take another agent's alive for this one's: a reply naming another agent_id is a bad reply", async function () {
    let error: unknown;
    await verdictOn(reply({ agent_id: 'host-2' })).catch((caught: unknown) => (error = caught));
    expect(error).to.be.instanceOf(BadRemoteReplyError);
    expect((error as Error).message).to.contain('names agent "host-2": not trusted');
  });

  it('keeps pending for a node not yet checked, and fails an unreachable or failed one', async function () {
    expect(await verdictOn(reply({ liveness_status: 'pending', last_seen: null }))).to.deep.equal({ kind: 'pending', why: 'no liveness check answered yet' });
    const unreachable = await verdictOn(reply({ liveness_status: 'unreachable', last_failure: 'no answer to 5 liveness checks in a row' }));
    expect(unreachable.kind).to.equal('fail');
  });
});
