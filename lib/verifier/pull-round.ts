import { KeyObject } from 'node:crypto';
import {
  beginRound,
  decideQuoteReplyStepwise,
  decideTransportFailure,
  decideApiVersionRefusal,
  decideVDelivery,
  type PullDecision,
  type PullRequest,
  type PullSettings,
  type RepeatRound,
  type TransportFailure,
  type VersionRenegotiation,
} from '../attestation/pull-decision.js';
import { AGENT_API_VERSIONS, compareApiVersions, isUnsupportedVersionReply, negotiateApiVersion, versionsInReply } from '../http/api-version.js';
import { KeylimeHttpError, ServiceUnreachableError } from '../http/client-errors.js';
import { JsonReplyUnread } from '../http/off-thread-json.js';
import { verifyQuoteSignatureAhead, type SignatureVerdict } from '../tpm/signature-verdict.js';
import { freshNonce } from './nonce.js';
import type { PolledAgent } from './polled-agent.js';
import { wrapVKey } from './v-key.js';
import { messageOf } from './error-message.js';
import { judgeInSlices } from './judge-in-slices.js';

type QuoteRequest = Extract<PullRequest, { kind: 'quote' }>;

/**
 * Now in unix seconds on the clock the round's times are stamped on: the database's
 * (`DatabaseClock.now`), which every verifier process sharing it judges them on.
 */
export type RoundClock = () => number;

/**
 * One pull round for `agent` (spec §6.2), as I/O only: the engine (`lib/attestation/pull-decision.ts`)
 * says what to request; this sends it — the quote request with a fresh 20-character nonce, or V
 * wrapped under the cached NK key — and hands back what came of it. When the engine asked without the
 * boot log and cannot judge the reply with the one it remembers, the request goes again at once, in
 * full, with a fresh nonce (still one verdict per round). A pass whose NK key is new
 * delivers V at once (when the tenant gave one) so the round still ends in one write. Reads
 * `agent.state` and `agent.retries`, changes neither: the caller stores the decision, then applies it.
 */
export function runPullRound(agent: PolledAgent, settings: PullSettings, now: RoundClock, renegotiated = false): Promise<PullDecision> {
  // Not `async`, which would wrap the round's own promise in one more per round: a throw is still a rejection.
  try {
    const position = { state: agent.state, retries: agent.retries };
    const bootAgent = { agentId: agent.enrolment.agentId, policies: agent.policies, mask: agent.mask };
    const request = beginRound(position, { agent: bootAgent, settings, now: Math.floor(now()) });
    if (request.kind === 'deliver_v') {
      return deliverV(agent, { state: request.state, retries: agent.retries }, undefined, settings);
    }
    return quoteRound(agent, request, settings, now, renegotiated);
  } catch (error) {
    return Promise.reject(error);
  }
}

/**
 * Sends the quote request the engine chose and has the reply judged; a reply it cannot judge is asked
 * again in full. The reply is judged a slice at a time (`judgeInSlices`): a huge IMA list does not
 * hold the event loop for the seconds its replay takes.
 */
async function quoteRound(agent: PolledAgent, request: QuoteRequest, settings: PullSettings, now: RoundClock, renegotiated: boolean): Promise<PullDecision> {
  const nonce = freshNonce();
  const query = { nonce, mask: request.bootLog?.mask ?? agent.mask, partial: request.partial, imaEntry: request.imaEntry };
  let judging = false;
  let judged: PullDecision | RepeatRound;
  try {
    judged = await agent.connection.judgeIntegrityQuote(query, (reply) => {
      judging = true;
      return judgeReply(agent, request, reply, nonce, settings, now);
    });
  } catch (error) {
    if (judging) throw error;
    const failure = transportFailure(error);
    const position = { state: request.state, retries: agent.retries };
    if (failure.kind !== 'version_refused' || renegotiated) {
      return decideTransportFailure(position, failure, { nonce, imaEntry: request.imaEntry }, settings);
    }
    const outcome = decideApiVersionRefusal(position, await renegotiate(agent), { nonce, imaEntry: request.imaEntry }, settings);
    if (outcome.kind === 'failed') return outcome.decision;
    agent.connection.useApiVersion(outcome.version);
    agent.apiVersion = outcome.version;
    return runPullRound(agent, settings, now, true);
  }
  if ('repeat' in judged) {
    return quoteRound(agent, judged.repeat, settings, now, renegotiated);
  }
  return judged.next.kind === 'deliver_v' ? deliverV(agent, judged, judged, settings) : judged;
}

/** The engine's decision on the agent's reply (`results`, untrusted), reached a slice at a time. */
function judgeReply(agent: PolledAgent, request: QuoteRequest, reply: unknown, nonce: string, settings: PullSettings, now: RoundClock): PullDecision | RepeatRound | Promise<PullDecision | RepeatRound> {
  const signatureVerdict = signatureAhead(agent, reply);
  return judgeInSlices(
    decideQuoteReplyStepwise(
      request,
      { policies: agent.policies, reply, nonce, imaEntry: request.imaEntry, now: Math.floor(now()), ...(signatureVerdict === undefined ? {} : { signatureVerdict }) },
      settings,
    ),
  );
}

/**
 * The AK signature of the reply's quote, verified before the engine judges the reply (with the quote's
 * parts decoded once, for both). Only a cryptographic fact: the engine uses it solely for this AK
 * object, signature and attest, and checks everything else (and anything it does not match) itself.
 */
function signatureAhead(agent: PolledAgent, reply: unknown): SignatureVerdict | undefined {
  const ak = agent.policies.akTpm;
  if (!(ak instanceof KeyObject) || reply === null || typeof reply !== 'object') {
    return undefined;
  }
  return verifyQuoteSignatureAhead(ak, (reply as { readonly quote?: unknown }).quote);
}

/**
 * Asks the agent which API versions it serves (`GET /version`) and picks the highest one both sides
 * speak (Keylime's `negotiate_version`); a `/version` that fails or names nothing leaves none.
 */
async function renegotiate(agent: PolledAgent): Promise<VersionRenegotiation> {
  const current = agent.apiVersion;
  let negotiated: string | undefined;
  try {
    negotiated = negotiateApiVersion(versionsInReply(await agent.connection.versionReply()) ?? [], AGENT_API_VERSIONS);
  } catch {
    negotiated = undefined;
  }
  return { current, negotiated, downgrade: negotiated !== undefined && compareApiVersions(negotiated, current) < 0 };
}

/** PROVIDE_V: wraps V under the cached NK key and posts it (no V enrolled: nothing to deliver). */
async function deliverV(
  agent: PolledAgent,
  position: { readonly state: PullDecision['state']; readonly retries: number },
  judged: PullDecision | undefined,
  settings: PullSettings,
): Promise<PullDecision> {
  const v = agent.enrolment.v;
  const publicKey = position.state.publicKey;
  let failure: TransportFailure | undefined;
  if (v !== null && publicKey !== null) {
    try {
      await agent.connection.sendVkey(wrapVKey(v, publicKey));
    } catch (error) {
      failure = transportFailure(error);
    }
  }
  return decideVDelivery(position, failure, judged, settings);
}

/** Classifies what the HTTP client threw; the engine decides what it means. */
export function transportFailure(error: unknown): TransportFailure {
  const message = messageOf(error);
  // A large reply the verifier's own reader could not parse (full, a thread lost) is no answer, not a bad one.
  if (error instanceof ServiceUnreachableError || error instanceof JsonReplyUnread) {
    return { kind: 'no_answer', message };
  }
  if (error instanceof KeylimeHttpError) {
    return isUnsupportedVersionReply(error.remoteHttpStatus, error.status)
      ? { kind: 'version_refused', message }
      : { kind: 'http_status', status: error.remoteHttpStatus, message };
  }
  return { kind: 'bad_reply', message };
}
