import { agentVersionResults, compareApiVersions } from '../http/api-version.js';
import { clientGoneSignal } from '../http/client-gone-signal.js';
import { ok, okJsonText } from '../http/envelope.js';
import type { KeylimeService } from '../http/keylime-service.js';
import { ForbiddenError } from '../http/http-errors.js';
import { RevocationEnvelopeBody, type RevocationReceiver } from '../revocation/revocation-receiver.js';
import type { AgentLogs } from './agent-logs.js';
import type { AkInfo, EkAlgorithm, TpmHashAlgorithm } from '../tpm-access/tpm-port.js';
import { IdentityQuoteQuery, UkeyBody, VerifyKeyQuery, VkeyBody } from './agent-dtos.js';
import { INTEGRITY_QUOTE_QUERY } from './integrity-query-fast-path.js';
import { pcrsOfMask, type AgentQuoter } from './agent-quoter.js';
import type { BootstrapKeys } from './bootstrap-keys.js';

/** What the routes serve from: the agent's identity, keys, TPM quoter and evidence files. */
export interface AgentApiContext {
  readonly uuid: string;
  readonly hashAlg: TpmHashAlgorithm;
  readonly ekAlgorithm: EkAlgorithm;
  readonly ak: AkInfo;
  /** The NK public key PEM: `pubkey`, and what PCR 16 binds. */
  readonly nkPublicPem: string;
  readonly quoter: AgentQuoter;
  readonly keys: BootstrapKeys;
  /** The IMA list and the UEFI event log (sent when PCR 0 is quoted); each omitted from replies while unreadable. */
  readonly logs: AgentLogs;
  /** Checks and acts on revocation notifications; absent: `/notifications/revocation` refuses them (403). */
  readonly revocation?: RevocationReceiver;
}

/** ukey may carry a payload (scripts, a zip): 16 MiB, above the service's 1 MiB default. */
const UKEY_BODY_LIMIT = 16 * 1024 * 1024;

/**
 * The pull agent's API (rust-keylime `main.rs` scopes, spec §2) on `service`, whose version policy is
 * the Rust agent's (2.1–2.6, "API version not supported: v<x>"). Every query and body is validated
 * by its DTO before the handler runs.
 */
export function registerAgentRoutes(service: KeylimeService, agent: AgentApiContext): void {
  registerAgentVersionRoute(service);

  service.route({
    method: 'GET',
    url: '/agent/info',
    minVersion: '2.2',
    handler: ({ apiVersion, reply }) =>
      ok(reply, {
        agent_uuid: agent.uuid,
        tpm_hash_alg: agent.hashAlg,
        tpm_enc_alg: encAlgName(agent.ekAlgorithm, apiVersion),
        tpm_sign_alg: agent.ak.signAlg,
        ak_handle: agent.ak.handle,
      }),
  });

  service.route({
    method: 'GET',
    url: '/keys/pubkey',
    handler: ({ reply }) => ok(reply, { pubkey: agent.nkPublicPem }),
  });

  service.route({
    method: 'GET',
    url: '/quotes/identity',
    query: IdentityQuoteQuery,
    handler: async ({ query, apiVersion, reply }) => {
      const quote = await agent.quoter.quote(query.nonce, pcrsOfMask(undefined), clientGoneSignal(reply));
      return ok(reply, { ...algorithms(agent, apiVersion), quote, pubkey: agent.nkPublicPem });
    },
  });

  service.route({
    method: 'GET',
    url: '/quotes/integrity',
    query: INTEGRITY_QUOTE_QUERY,
    handler: async ({ query, apiVersion, reply }) => {
      const pcrs = pcrsOfMask(query.mask);
      const quote = await agent.quoter.quote(query.nonce, pcrs, clientGoneSignal(reply));
      // Logs are read after the quote, so they can only be ahead of the quoted PCRs, never behind
      // (a verifier accepts a log ahead of PCR 10; spec §7.6).
      const results: Record<string, unknown> = { ...algorithms(agent, apiVersion), quote };
      if (query.partial === '0') {
        results['pubkey'] = agent.nkPublicPem;
      }
      const slice = await agent.logs.imaList(Number(query.ima_ml_entry ?? '0'));
      if (slice !== undefined) {
        results['ima_measurement_list'] = slice.list;
        results['ima_measurement_list_entry'] = slice.entry;
      }
      const bootLog = pcrs.includes(0) ? await agent.logs.bootLogBase64() : undefined;
      return bootLog === undefined ? ok(reply, results) : okJsonText(reply, withBootLog(results, bootLog));
    },
  });

  service.route({
    method: 'POST',
    url: '/keys/ukey',
    body: UkeyBody,
    bodyLimit: UKEY_BODY_LIMIT,
    handler: ({ body, reply }) => {
      agent.keys.addU(body.encrypted_key, body.auth_tag, body.payload);
      return ok(reply, {});
    },
  });

  service.route({
    method: 'POST',
    url: '/keys/vkey',
    body: VkeyBody,
    handler: ({ body, reply }) => {
      agent.keys.addV(body.encrypted_key);
      return ok(reply, {});
    },
  });

  service.route({
    method: 'POST',
    url: '/notifications/revocation',
    body: RevocationEnvelopeBody,
    handler: async ({ body, reply }) => {
      if (agent.revocation === undefined) {
        throw new ForbiddenError('revocation notifications are not configured on this agent');
      }
      await agent.revocation.receive(body);
      return ok(reply, {});
    },
  });

  service.route({
    method: 'GET',
    url: '/keys/verify',
    query: VerifyKeyQuery,
    handler: ({ query, reply }) => ok(reply, { hmac: agent.keys.hmacOf(query.challenge) }),
  });
}

/** `GET /version` (unversioned): the API versions this agent serves, as the Rust agent answers. */
export function registerAgentVersionRoute(service: KeylimeService): void {
  service.route({
    method: 'GET',
    url: '/version',
    versioned: false,
    handler: ({ reply }) => ok(reply, agentVersionResults(service.apiVersions)),
  });
}

/**
 * The JSON of `results` (never empty) plus `mb_measurement_list` as its last member: what
 * `JSON.stringify` makes of them together, without scanning the 50 KB of the log for characters to
 * escape on every quote; base64 has none.
 */
function withBootLog(results: Record<string, unknown>, bootLogBase64: string): string {
  return `${JSON.stringify(results).slice(0, -1)},"mb_measurement_list":"${bootLogBase64}"}`;
}

/** `hash_alg`, `enc_alg`, `sign_alg` of quote replies. */
function algorithms(agent: AgentApiContext, apiVersion: string | undefined): Record<string, string> {
  return { hash_alg: agent.hashAlg, enc_alg: encAlgName(agent.ekAlgorithm, apiVersion), sign_alg: agent.ak.signAlg };
}

/** From API 2.5 the EK algorithm carries its size (`rsa2048`, `ecc256`); before, the bare family (spec §0.2). */
export function encAlgName(ekAlgorithm: EkAlgorithm, apiVersion: string | undefined): string {
  const sized = apiVersion === undefined || compareApiVersions(apiVersion, '2.5') >= 0;
  if (!sized) {
    return ekAlgorithm;
  }
  return ekAlgorithm === 'rsa' ? 'rsa2048' : 'ecc256';
}
