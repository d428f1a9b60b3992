import { shownOnProcessClock, type DatabaseClock, type DatabaseClockReadings } from '../../db/database-clock.js';
import { IsIn, IsInt, IsOptional, Matches, Max, Min, ValidateBy } from 'class-validator';
import { LIVENESS_MODES, livenessStatusWord, NO_INTEGRITY_EVIDENCE, type LivenessMode } from '../../attestation/liveness-decision.js';
import { livenessOperatorStatus } from '../../attestation/liveness-operator-decision.js';
import { ok } from '../../http/envelope.js';
import { IsHostAddress } from '../../http/host-address.js';
import { RequestValidationError } from '../../http/http-errors.js';
import type { KeylimeService } from '../../http/keylime-service.js';
import { IsKeylimeAgentId, IsPem, NullAsAbsent } from '../../http/validators.js';
import { trustLevelOfMode } from '../../identity/trust-level.js';
import { isPemCertificate } from '../../pki/pem-certificate.js';
import { changeRecord } from '../admin-change-record.js';
import { refuseReservedAgentId } from '../reserved-agent-ids.js';
import { requestTenant, seesTenant } from '../verifier-access.js';
import { LivenessNotEnrolled, VerifierConflict } from '../verifier-errors.js';
import type { LivenessMonitor } from './liveness-monitor.js';
import type { LivenessEnrolRefusal, LivenessRecord, LivenessRepository } from './liveness-repository.js';

/** Longest liveness enrolment `metadata` accepted: the driver writes a node uuid there, not documents. */
const MAX_LIVENESS_METADATA = 16 * 1024;

/** JSON text of an object (`{...}`), at most `MAX_LIVENESS_METADATA` characters; length is checked before parsing. */
function IsJsonObjectText(): PropertyDecorator {
  return ValidateBy({
    name: 'isJsonObjectText',
    validator: {
      validate: (value: unknown) => typeof value === 'string' && value.length <= MAX_LIVENESS_METADATA && isJsonObject(value),
      defaultMessage: () => `must be the JSON text of an object, at most ${MAX_LIVENESS_METADATA} characters`,
    },
  });
}

/** A certificate every check can pin: PEM whose block is no X.509 certificate was stored, and then no check of the node ever ran. */
function IsReadableCertificate(): PropertyDecorator {
  return ValidateBy({
    name: 'isReadableCertificate',
    validator: {
      validate: (value: unknown) => typeof value === 'string' && isPemCertificate(value),
      defaultMessage: () => 'must be a readable X.509 certificate',
    },
  });
}

function isJsonObject(text: string): boolean {
  try {
    const value = JSON.parse(text) as unknown;
    return typeof value === 'object' && value !== null && !Array.isArray(value);
  } catch {
    return false;
  }
}

export class LivenessParams {
  @IsKeylimeAgentId()
  agent_id!: string;
}

/** `POST /v2.x/liveness/{agent_id}` (admin): a node without a TPM, as the registrar holds it. */
export class LivenessEnrolBody {
  @IsIn(LIVENESS_MODES, { message: 'must be id-secret or id-only (TPM nodes are enrolled with POST /agents/{id})' })
  identity_mode!: LivenessMode;

  @IsHostAddress()
  ip!: string;

  @IsInt()
  @Min(1)
  @Max(65535)
  port!: number;

  /** The agent's registered HTTPS certificate: pinned for every check. */
  @IsPem({ label: 'CERTIFICATE', maxLength: 64 * 1024 })
  @IsReadableCertificate()
  mtls_cert!: string;

  /** `id-secret`: the registrar's proof key for the host (hex). */
  @NullAsAbsent()
  @IsOptional()
  @Matches(/^[0-9a-f]{64}$/, { message: 'must be 64 lowercase hex digits' })
  proof_key?: string;

  /**
   * Free JSON object text, kept and shown as a TPM enrolment's `metadata` is: the keylime driver
   * names the node that enrolled the agent here (docs/keylime-driver.md, "One agent, one node").
   */
  @NullAsAbsent()
  @IsOptional()
  @IsJsonObjectText()
  metadata?: string;
}

/** When a status is read (unix seconds): by the database's clock, which dated the last answer, and by this process's. */
export type LivenessStatusClock = DatabaseClockReadings;

/**
 * `results` of `GET /v2.x/liveness/{agent_id}` at `clock`: an `alive` whose last answer is older than
 * `freshnessBound` seconds (or dated ahead) on the database's clock, which dated it, is shown `pending`
 * with `stale: true`, as a stale PASS is; `freshness_bound` tells the driver the bound. `last_seen` is
 * given on this process's clock, as the reply's `Date` header the driver judges it against, rounded down
 * (an answer shown a fraction of a second older, never younger).
 */
export function livenessStatusResults(record: LivenessRecord, clock: LivenessStatusClock, freshnessBound: number): Record<string, unknown> {
  const shown = livenessOperatorStatus(record.state, clock.databaseNow, freshnessBound);
  const lastSeen = record.state.lastSeen === null ? null : shownOnProcessClock(record.state.lastSeen, clock);
  return {
    agent_id: record.agentId,
    identity_mode: record.mode,
    trust_level: record.trustLevel,
    liveness_status: shown.status,
    attestation_status: livenessStatusWord(shown.status),
    integrity_evidence: NO_INTEGRITY_EVIDENCE,
    misses: record.state.misses,
    last_seen: lastSeen,
    last_failure: record.state.lastFailure,
    stale: shown.stale,
    freshness_bound: freshnessBound,
    verifier_id: record.verifierId,
    metadata: record.metaData,
  };
}

/**
 * The verifier's routes for nodes without a TPM (ironlime, docs/identity.md), all admin and gated like
 * `/agents/{id}` (verifier-access.ts: viewer reads, operator enrols, admin deletes, a token sees only
 * its tenant's nodes; changes are audited): enrol (replacing any earlier enrolment of the same
 * tenant; a first check of that node runs at once), status, delete.
 */
export function registerLivenessRoutes(
  service: KeylimeService,
  deps: {
    readonly repository: LivenessRepository;
    readonly monitor: LivenessMonitor;
    readonly verifierId: string;
    /** Seconds past which an `alive` is shown stale (`livenessFreshnessBound`). */
    readonly freshnessBound: number;
    /** The database's clock, which dated the last answers, and this process's at one instant. */
    readonly clock: Pick<DatabaseClock, 'readings'>;
  },
): void {
  service.route({
    method: 'POST',
    url: '/liveness/:agent_id',
    admin: true,
    params: LivenessParams,
    body: LivenessEnrolBody,
    handler: async ({ params, body, request, reply }) => {
      if (body.identity_mode === 'id-secret' && body.proof_key === undefined) {
        throw new RequestValidationError('body.proof_key', 'an id-secret node needs its proof key from the registrar');
      }
      refuseReservedAgentId(params.agent_id);
      const refused = await deps.repository.enrol({
        agentId: params.agent_id,
        tenant: requestTenant(request),
        verifierId: deps.verifierId,
        mode: body.identity_mode,
        trustLevel: trustLevelOfMode(body.identity_mode),
        ip: body.ip,
        port: body.port,
        mtlsCert: body.mtls_cert,
        proofKey: body.identity_mode === 'id-secret' ? (body.proof_key ?? null) : null,
        metaData: body.metadata,
      }, changeRecord(request, 200), seesTenant(request));
      if (refused !== undefined) refuseEnrolment(params.agent_id, refused);
      await deps.monitor.checkEnrolled(params.agent_id);
      return ok(reply, {});
    },
  });

  service.route({
    method: 'GET',
    url: '/liveness/:agent_id',
    admin: true,
    params: LivenessParams,
    handler: async ({ params, request, reply }) => {
      const record = await deps.repository.find(params.agent_id);
      // The tenant again on the row read: the admin gate read it before, and the id may have been enrolled since.
      if (record === undefined || !seesTenant(request)(record.tenant)) throw new LivenessNotEnrolled(params.agent_id);
      return ok(reply, livenessStatusResults(record, deps.clock.readings(), deps.freshnessBound));
    },
  });

  service.route({
    method: 'DELETE',
    url: '/liveness/:agent_id',
    admin: true,
    params: LivenessParams,
    handler: async ({ params, request, reply }) => {
      if (!(await deps.repository.delete(params.agent_id, changeRecord(request, 200), seesTenant(request)))) throw new LivenessNotEnrolled(params.agent_id);
      return ok(reply, {});
    },
  });
}

/**
 * A node is either attested with a TPM or liveness-checked, never both under one id: moving it to the
 * weaker check is an explicit admin action (delete the TPM enrolment first), not a side door. Another
 * tenant's node (either kind) is answered exactly as a node that is not there, so its existence does not leak.
 */
function refuseEnrolment(agentId: string, refused: LivenessEnrolRefusal): never {
  if (refused.reason === 'hidden') throw new LivenessNotEnrolled(agentId);
  throw new VerifierConflict(`agent ${agentId} is attested with a TPM on this verifier; delete that enrolment first to check it for liveness only`);
}
