import { randomInt } from 'node:crypto';
import { IronlimeError } from '../../interfaces/errors.js';
import { AgentClient } from '../agent/agent-client.js';
import type { QuoteResults } from '../agent/agent-reply-dtos.js';
import { BadRemoteReplyError } from '../http/client-errors.js';
import { isHostAddress } from '../http/host-address.js';
import { httpsServiceUrl } from '../http/keylime-client.js';
import { isQuoteHashAlg } from '../attestation/algorithms.js';
import { expectedDataPcr } from '../attestation/pcr-checks.js';
import type { ServiceTls } from '../pki/service-tls.js';
import type { RegistrarClient } from '../registrar/registrar-client.js';
import type { CertStore } from '../tpm/cert-store.js';
import { DATA_PCR, DEFAULT_ACCEPTED_HASH_ALGS, DEFAULT_ACCEPTED_SIGN_ALGS } from '../tpm/keylime-profile.js';
import { checkAkAttributes } from '../tpm/ak-attributes.js';
import { tpmKeyWeakness } from '../tpm/weak-tpm-key.js';
import { parseQuoteString } from '../tpm/quote-string.js';
import { parsePublicArea } from '../tpm/tpmt-public.js';
import { verifyQuote } from '../tpm/verify-quote.js';
import { checkRegisteredEkCertificate, loadTenantCertStore, type TenantEkCheckMode } from './ek-certificate-check.js';
import { agentKeyProblem } from './payload-keys.js';
import { showRegistrarAgent, type RegisteredAgent } from './registrar-agents.js';
import { bytesEqual } from '../bytes/bytes-equal.js';

export interface AgentIdentityCheckInput {
  /** An admin (mTLS) client of the registrar's TLS port. */
  readonly registrar: RegistrarClient;
  readonly agentId: string;
  /** The tenant's client certificate and key, from the CA the agent trusts (`ca` is not used for the agent). */
  readonly tls: Pick<ServiceTls, 'cert' | 'key'>;
  /** Default `require` (Keylime's `require_ek_cert = True`). */
  readonly ekCheck?: TenantEkCheckMode;
  /** Trusted EK CAs: default the shipped vendor store plus `extraEkCaDirs`. */
  readonly certStore?: CertStore;
  readonly extraEkCaDirs?: readonly string[];
  /** Reach the agent here instead of `https://<registered ip>:<registered port>` (NAT, tests). */
  readonly agentUrl?: string;
  /** Default 20 random letters and digits, as Keylime's `random_password(20)`. */
  readonly nonce?: string;
  readonly acceptedHashAlgs?: readonly string[];
  readonly acceptedSignAlgs?: readonly string[];
  readonly timeoutMs?: number;
}

/** Deadline of the whole identity-quote exchange when the input gives none (the agent client's default). */
const DEFAULT_QUOTE_TIMEOUT_MS = 30_000;

/** The check that failed, in the order they run. */
export type IdentityCheck = 'agent-record' | 'ak-attributes' | 'ek-certificate' | 'algorithm' | 'quote' | 'pubkey-binding' | 'pubkey-type';

export type AgentIdentityVerdict =
  | {
      readonly valid: true;
      readonly agent: RegisteredAgent;
      /** Store entry anchoring the EK certificate (undefined when the check was off or only warned). */
      readonly ekAnchor: string | undefined;
      /** Accepted-anyway findings: EK certificate under `warn`, `regcount` > 1. */
      readonly warnings: readonly string[];
      readonly nonce: string;
      readonly hashAlg: string;
      /** The agent's NK public key, proven bound to its TPM by PCR 16: what U is wrapped under. */
      readonly pubkey: string;
    }
  | { readonly valid: false; readonly check: IdentityCheck; readonly reason: string; readonly agent: RegisteredAgent };

/** What a push agent's enrolment checks: the registrar record and its EK certificate (no quote: it has no port). */
export type PushIdentityVerdict =
  | { readonly valid: true; readonly agent: RegisteredAgent; readonly ekAnchor: string | undefined; readonly warnings: readonly string[] }
  | { readonly valid: false; readonly check: IdentityCheck; readonly reason: string; readonly agent: RegisteredAgent };

/**
 * The identity checks of a push agent's enrolment (spec §10.1, §10.5a): the registrar's active
 * record (its AK was proven bound to the EK by TPM2_ActivateCredential) and its EK certificate
 * against the trusted store — which Keylime's `--push-model` tenant skips. An identity quote cannot
 * be asked for (the agent opens no port); the verifier's session proof of possession takes its place.
 */
export function checkPushAgentIdentity(input: Omit<AgentIdentityCheckInput, 'tls' | 'agentUrl' | 'nonce'>): Promise<PushIdentityVerdict> {
  return checkRegisteredIdentity(input);
}

async function checkRegisteredIdentity(input: Omit<AgentIdentityCheckInput, 'tls' | 'agentUrl' | 'nonce'>): Promise<PushIdentityVerdict> {
  const agent = await showRegistrarAgent(input.registrar, input.agentId);
  const refuse = (check: IdentityCheck, reason: string): PushIdentityVerdict => ({ valid: false, check, reason, agent });
  const warnings: string[] = [];
  if (agent.regcount > 1) {
    // All `regcount` says is that the id was registered more than once: Keylime's registrar counts every
    // re-registration (a restarted agent), ours those that changed an identity field (adding an EK
    // certificate); both refuse a different EK or AK for a stored id (issue 11 item 12).
    warnings.push(
      `agent '${agent.agentId}': the registrar reports regcount ${agent.regcount} (the id was registered more than ` +
        'once; a different EK or AK for a stored id is refused, so this alone does not mean its TPM changed)',
    );
  }
  const akProblems = registeredAkProblems(agent.akPublic);
  if (akProblems.length > 0) {
    return refuse('ak-attributes', `the AK agent '${agent.agentId}' registered is not a restricted signing key: ${akProblems.join('; ')}`);
  }
  // Parsed above without a problem. Keylime's registrar takes short and ROCA RSA keys.
  const akWeakness = tpmKeyWeakness(parsePublicArea(agent.akPublic));
  if (akWeakness !== null) {
    return refuse('ak-attributes', `the AK agent '${agent.agentId}' registered cannot be trusted: it ${akWeakness}`);
  }
  const ek = checkRegisteredEkCertificate(agent, input.ekCheck ?? 'require', input.certStore ?? loadTenantCertStore(input.extraEkCaDirs));
  if (!ek.ok) {
    return refuse('ek-certificate', ek.reason);
  }
  if (ek.warning !== undefined) {
    warnings.push(ek.warning);
  }
  return { valid: true, agent, ekAnchor: ek.anchor, warnings };
}

/**
 * What the tenant's `add` checks before trusting an agent (Keylime tenant `do_quote` + `verify_ek`,
 * spec §8 steps 1 and 4): reads the agent from the registrar; checks its EK certificate against the
 * trusted store; asks the agent (pinning the registrar's `mtls_cert`, with our client certificate)
 * for `quotes/identity` with a fresh nonce; verifies that quote with lib/tpm against the AK the
 * REGISTRAR holds (so a quote from any other TPM is refused), carrying our nonce, with an accepted
 * hash and scheme; and checks PCR 16 = H(0 ‖ H(pubkey)) in the quote's bank, binding the returned NK
 * to that TPM. No PCR other than 16 is judged, nor the TPM clock (there is no earlier quote).
 *
 * Resolves to a verdict; transport failures throw (`KeylimeHttpError` — e.g. 404 for an unknown or
 * inactive agent —, `ServiceUnreachableError` — also when the agent's certificate is not the
 * registered one —, `BadRemoteReplyError`).
 */
export async function checkAgentIdentity(input: AgentIdentityCheckInput): Promise<AgentIdentityVerdict> {
  const registered = await checkRegisteredIdentity(input);
  if (!registered.valid) {
    return registered;
  }
  const { agent, warnings } = registered;
  const ek = { anchor: registered.ekAnchor };
  const refuse = (check: IdentityCheck, reason: string): AgentIdentityVerdict => ({ valid: false, check, reason, agent });
  const agentUrl = input.agentUrl ?? registeredAgentUrl(agent);
  if (agent.mtlsCert === null || agentUrl === undefined) {
    return refuse('agent-record', `agent '${agent.agentId}' has no mTLS certificate or contact address at the registrar`);
  }
  const nonce = input.nonce ?? randomAlphanumeric(20);
  const timeoutMs = input.timeoutMs ?? DEFAULT_QUOTE_TIMEOUT_MS;
  const client = new AgentClient({
    baseUrl: agentUrl,
    agentCert: agent.mtlsCert,
    clientTls: input.tls,
    timeoutMs,
  });
  let reply: QuoteResults;
  try {
    // The agent client's deadline covers the whole exchange: an agent that drips its reply does not hold the tenant.
    reply = await client.identityQuote(nonce);
  } finally {
    client.close();
  }
  const acceptedHash = input.acceptedHashAlgs ?? DEFAULT_ACCEPTED_HASH_ALGS;
  const acceptedSign = input.acceptedSignAlgs ?? DEFAULT_ACCEPTED_SIGN_ALGS;
  if (!isQuoteHashAlg(reply.hash_alg) || !acceptedHash.includes(reply.hash_alg)) {
    return refuse('algorithm', `hash_alg "${reply.hash_alg}" is not accepted (${acceptedHash.join(', ')})`);
  }
  if (!acceptedSign.includes(reply.sign_alg)) {
    return refuse('algorithm', `sign_alg "${reply.sign_alg}" is not accepted (${acceptedSign.join(', ')})`);
  }
  const hashAlg = reply.hash_alg;
  let verdict;
  try {
    const parts = parseQuoteString(reply.quote);
    verdict = verifyQuote({
      akPublic: agent.akPublic,
      attest: parts.attest,
      signature: parts.signature,
      pcrBlob: parts.pcrBlob,
      nonce: new Uint8Array(Buffer.from(nonce, 'ascii')),
      hashAlg,
      signAlg: reply.sign_alg,
    });
  } catch (error) {
    if (error instanceof IronlimeError) {
      return refuse('quote', `quote: ${error.message}`);
    }
    throw error;
  }
  if (!verdict.valid) {
    return refuse('quote', verdict.reason);
  }
  if (reply.pubkey === undefined) {
    return refuse('pubkey-binding', 'the identity quote reply carries no pubkey');
  }
  const quoted = verdict.pcrBank === hashAlg ? verdict.pcrs.get(DATA_PCR) : undefined;
  if (quoted === undefined) {
    return refuse('pubkey-binding', `PCR ${DATA_PCR} of the ${hashAlg} bank is not in the quote`);
  }
  if (!bytesEqual(quoted, expectedDataPcr(hashAlg, reply.pubkey))) {
    return refuse('pubkey-binding', `PCR ${DATA_PCR} does not bind the returned pubkey to the TPM`);
  }
  const keyProblem = agentKeyProblem(reply.pubkey);
  if (keyProblem !== undefined) {
    return refuse('pubkey-type', keyProblem);
  }
  return { valid: true, agent, ekAnchor: ek.anchor, warnings: [...warnings], nonce, hashAlg, pubkey: reply.pubkey };
}

/**
 * What makes the registrar's AK unfit to verify quotes with (`checkAkAttributes`: restricted + sign,
 * no decrypt, made in the TPM): a registrar that checks no attributes — Keylime's — may hold any key.
 */
function registeredAkProblems(akPublic: Uint8Array): string[] {
  try {
    return checkAkAttributes(parsePublicArea(akPublic));
  } catch (error) {
    if (error instanceof IronlimeError) {
      return [`it is not a TPM public area (${error.message})`];
    }
    throw error;
  }
}

/**
 * `https://<ip>:<port>` from the registrar record (IPv6 in brackets), or undefined without both.
 * @throws BadRemoteReplyError when the ip is no address of an agent (a Keylime registrar keeps any text: `10.0.0.1:9002`).
 */
export function registeredAgentUrl(agent: RegisteredAgent): string | undefined {
  if (agent.ip === null || agent.port === null) {
    return undefined;
  }
  return httpsServiceUrl(checkedRegisteredIp(agent.agentId, agent.ip), agent.port);
}

/**
 * The registered `ip`, checked as ironlime's registrar checks it on registration (`isHostAddress`).
 * @throws BadRemoteReplyError naming the record when it is not an IP address or a host name.
 */
export function checkedRegisteredIp(agentId: string, ip: string): string {
  if (!isHostAddress(ip)) {
    throw new BadRemoteReplyError(`registrar agent ${agentId}`, `ip ${JSON.stringify(ip.slice(0, 64))} is not an IP address or a host name the agent can be reached at`);
  }
  return ip;
}

const ALPHANUMERIC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** `length` characters from [A-Za-z0-9], uniformly (Keylime `random_password`). */
export function randomAlphanumeric(length: number): string {
  let out = '';
  for (let i = 0; i < length; i += 1) {
    out += ALPHANUMERIC[randomInt(ALPHANUMERIC.length)];
  }
  return out;
}
