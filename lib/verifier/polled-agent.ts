import type { AgentPolicies } from '../attestation/agent-policies.js';
import { enteringAkPublicKey } from '../attestation/agent-policies.js';
import type { AgentAttestationState } from '../attestation/agent-state.js';
import { formatPcrMask, parseTpmPolicy } from '../attestation/tpm-policy.js';
import { InvalidParameterValue } from '../../interfaces/errors.js';
import { httpsServiceUrl } from '../http/keylime-client.js';
import type { RevocationAgentTarget } from '../revocation/revocation-notice.js';
import { AgentClient } from '../agent/agent-client.js';
import type { RepeatedTexts } from '../http/repeated-member-json.js';
import type { ReplyBudget } from '../http/reply-budget.js';
import type { OffThreadJson } from '../http/off-thread-json.js';
import type { GridEntry } from './round-start-grid.js';
import type { PolicyCache } from './policy-cache.js';
import type { VerifierAgentEnrolment, VerifierAgentRecord } from './verifier-agent-record.js';
import type { StoredMbPolicy, StoredRuntimePolicy, Versioned, VerifierPolicyRepository } from './verifier-policy-repository.js';
import type { MeasuredBootEvaluate } from '../attestation/agent-policies.js';

/**
 * Everything the pull loop keeps in memory for one agent, so that a round needs no database read:
 * the parsed AK key, the compiled policies (shared through the `PolicyCache`), the PCR mask, a
 * kept-alive connection pinning the agent's certificate, and the current attestation state.
 */
export interface PolledAgent {
  enrolment: VerifierAgentEnrolment;
  readonly policies: AgentPolicies;
  /** `tpm_policy.mask` in wire form. */
  readonly mask: string;
  readonly connection: AgentClient;
  /** Where another agent's revocation notice goes: built once, sent over `connection` (no new handshake). */
  readonly revocationTarget: RevocationAgentTarget;
  state: AgentAttestationState;
  /** Consecutive unreachable attempts (Keylime `num_retries`); 0 after any answer. */
  retries: number;
  /** The next round's place on the scheduler's `RoundStartGrid`. */
  timer: GridEntry | undefined;
  /** When (`performance.now()`) the pending round is due, for the start-delay metric; 0 = at once. */
  dueAt: number;
  /** A round is in flight, or its verdict waits to be stored (`VerdictStore`). */
  running: boolean;
  /** An operator changed the stored row during the round: re-read it afterwards instead of rescheduling. */
  reconcileAfterRound: boolean;
  /**
   * Agent API version the connection speaks: the enrolled `supported_version`, or the one negotiated
   * after the agent refused it (stored by the scheduler once the round is).
   */
  apiVersion: string;
  /**
   * The version of the agent's row (`agentVersionSql`) as loaded or as the last stored round left it:
   * the next verdict, first write and retries alike, is stored only over it (`VerdictStore`).
   */
  rowVersion: string | undefined;
  /**
   * The versions (`rowVersion`) of the stored runtime policy and refstate `policies` were compiled from
   * (undefined: the enrolment names none): `PolicyVersionWatch` reloads the agent when either changes.
   */
  readonly policyVersions: PolicyVersionsOfAgent;
}

export interface PolicyVersionsOfAgent {
  readonly runtime: string | undefined;
  readonly mb: string | undefined;
}

export interface PolledAgentDeps {
  readonly policies: VerifierPolicyRepository;
  readonly cache: PolicyCache;
  readonly clientTls: { readonly cert: string; readonly key: string };
  readonly requestTimeoutMs: number;
  readonly measuredBootEvaluate: MeasuredBootEvaluate;
  /** Boot logs the agents' clients share (`AgentClientOptions.bootLogs`). */
  readonly bootLogs: RepeatedTexts;
  /** Bytes of quote replies the agents' clients read and judge at once (`VerifierConfig.pullReplyBudget`). */
  readonly replyBudget?: ReplyBudget;
  /** Where the agents' clients parse replies over 1 MiB, off the event loop (`AgentClientOptions.offThreadJson`). */
  readonly offThreadJson?: OffThreadJson;
}

/** What compiling an agent's stored policies needs (the pull loop and the push routes share it). */
export type AgentPolicyDeps = Pick<PolledAgentDeps, 'cache' | 'measuredBootEvaluate'> & { readonly policies: PolicyReads };

/** What compiling an agent's policies reads from the policy stores (the push routes share these reads between agents). */
export type PolicyReads = Pick<VerifierPolicyRepository, 'findRuntime' | 'findMb'>;

/** The runtime policy and measured boot refstate an agent's row names, as stored with their versions: what `loadAgentPolicies` reads. */
export interface StoredAgentPolicies {
  readonly runtime: Versioned<StoredRuntimePolicy> | undefined;
  readonly mb: Versioned<StoredMbPolicy> | undefined;
}

/**
 * A policy an agent's row names is not stored (a foreign key makes this rare): a lasting fault of the
 * agent's enrolment, unlike a database error, so the agent is failed rather than asked again.
 */
export class PolicyNotStored extends Error {}

/**
 * The database's part of `loadAgentPolicies`: the stored policies `record` names, not yet compiled.
 * A name whose row is gone throws `PolicyNotStored`: judged without it, the agent would have nothing checked.
 */
export async function readStoredPolicies(record: VerifierAgentRecord, deps: Pick<AgentPolicyDeps, 'policies'>): Promise<StoredAgentPolicies> {
  const { runtimePolicyName, mbPolicyName } = record;
  return {
    runtime: runtimePolicyName === null ? undefined : stored(await deps.policies.findRuntime(runtimePolicyName), 'runtime policy', runtimePolicyName, record),
    mb: mbPolicyName === null ? undefined : stored(await deps.policies.findMb(mbPolicyName), 'measured boot policy', mbPolicyName, record),
  };
}

function stored<T>(policy: T | undefined, kind: string, name: string, record: VerifierAgentRecord): T {
  if (policy === undefined) {
    throw new PolicyNotStored(`agent ${record.agentId} is enrolled with the ${kind} "${name}", which is not stored`);
  }
  return policy;
}

/**
 * `loadAgentPolicies` without the database: the policies `stored` holds for `record`, compiled (throws
 * when a stored value no longer parses or compiles).
 */
export function compileAgentPolicies(record: VerifierAgentRecord, stored: StoredAgentPolicies, deps: AgentPolicyDeps): AgentPolicies {
  const imaKeyring = deps.cache.imaKeyring(record.imaSignVerificationKeys);
  return {
    tpmPolicy: parseTpmPolicy(record.tpmPolicy),
    runtimePolicy: stored.runtime === undefined ? null : deps.cache.runtimePolicy(stored.runtime),
    ...(imaKeyring === undefined ? {} : { imaKeyring }),
    mbRefstate: stored.mb === undefined ? null : deps.cache.refstate(stored.mb),
    measuredBootEvaluate: deps.measuredBootEvaluate,
    acceptTpmHashAlgs: record.acceptTpmHashAlgs,
    acceptTpmEncryptionAlgs: record.acceptTpmEncryptionAlgs,
    acceptTpmSigningAlgs: record.acceptTpmSigningAlgs,
    akTpm: enteringAkPublicKey(record.akTpm),
  };
}

/**
 * The agent's policies as the engine takes them: the stored runtime policy and refstate (compiled
 * once, shared through the `PolicyCache`), the IMA keyring, the accept lists, the parsed `tpm_policy`
 * and the parsed AK.
 */
export async function loadAgentPolicies(record: VerifierAgentRecord, deps: AgentPolicyDeps): Promise<AgentPolicies> {
  return compileAgentPolicies(record, await readStoredPolicies(record, deps), deps);
}

/**
 * What loading an agent came to: `loaded`; `unloadable`, a lasting fault of its enrolment (a policy it
 * names is not stored, a stored value no longer parses or compiles — the enrolment checked all of them —
 * or no address or certificate to poll it at); `unavailable`, the policy read failed (the database).
 */
export type AgentLoad =
  | { readonly kind: 'loaded'; readonly agent: PolledAgent }
  | { readonly kind: 'unloadable'; readonly error: unknown }
  | { readonly kind: 'unavailable'; readonly error: unknown };

/** Loads what a round needs for `record` (reads the stored policies once), saying how it failed. */
export async function loadPolledAgent(record: VerifierAgentRecord, deps: PolledAgentDeps): Promise<AgentLoad> {
  let stored: StoredAgentPolicies;
  try {
    stored = await readStoredPolicies(record, deps);
  } catch (error) {
    return { kind: error instanceof PolicyNotStored ? 'unloadable' : 'unavailable', error };
  }
  try {
    return { kind: 'loaded', agent: buildPolledAgent(record, stored, deps) };
  } catch (error) {
    return { kind: 'unloadable', error };
  }
}

/** The agent of `record` with the policies `stored` holds for it: throws when it cannot be polled. */
function buildPolledAgent(record: VerifierAgentRecord, stored: StoredAgentPolicies, deps: PolledAgentDeps): PolledAgent {
  if (record.ip === null || record.port === null || record.mtlsCert === null) {
    throw new InvalidParameterValue('agent', `${record.agentId} has no contact address or mTLS certificate to poll`);
  }
  const policies = compileAgentPolicies(record, stored, deps);
  const mask = formatPcrMask(parseTpmPolicy(policies.tpmPolicy).mask);
  const baseUrl = httpsServiceUrl(record.ip, record.port);
  const connection = new AgentClient({
    baseUrl,
    agentCert: record.mtlsCert,
    clientTls: deps.clientTls,
    apiVersion: record.supportedVersion,
    timeoutMs: deps.requestTimeoutMs,
    bootLogs: deps.bootLogs,
    ...(deps.replyBudget === undefined ? {} : { replyBudget: deps.replyBudget }),
    ...(deps.offThreadJson === undefined ? {} : { offThreadJson: deps.offThreadJson }),
  });
  return {
    enrolment: record,
    policies,
    mask,
    connection,
    revocationTarget: {
      agentId: record.agentId,
      ...(record.tenant === undefined ? {} : { tenant: record.tenant }),
      url: baseUrl,
      apiVersion: record.supportedVersion,
      mtlsCert: record.mtlsCert,
      post: (envelopeJson) => connection.notifyRevocation(envelopeJson),
      receiver: () => connection.connectionSerial(),
    },
    state: record.state,
    retries: 0,
    timer: undefined,
    dueAt: 0,
    running: false,
    reconcileAfterRound: false,
    apiVersion: record.supportedVersion,
    rowVersion: record.rowVersion,
    policyVersions: { runtime: stored.runtime?.version, mb: stored.mb?.version },
  };
}
