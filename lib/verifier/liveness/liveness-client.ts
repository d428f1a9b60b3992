import { IsBoolean, IsIn, IsInt, IsNumber, IsOptional, IsString, Min } from 'class-validator';
import { LIVENESS_MODES, LIVENESS_STATUSES, type LivenessMode, type LivenessStatus } from '../../attestation/liveness-decision.js';
import type { KeylimeClient } from '../../http/keylime-client.js';
import { OptionalNotNull } from '../../http/validators.js';
import { TRUST_LEVELS, type TrustLevel } from '../../identity/trust-level.js';

/** `results` of `GET /v2.x/liveness/{id}`, as a client checks them. */
export class LivenessStatusReply {
  @IsString()
  agent_id!: string;

  @IsIn(LIVENESS_MODES)
  identity_mode!: LivenessMode;

  @IsIn(TRUST_LEVELS)
  trust_level!: TrustLevel;

  @IsIn(LIVENESS_STATUSES)
  liveness_status!: LivenessStatus;

  @IsString()
  attestation_status!: string;

  @IsString()
  integrity_evidence!: string;

  @IsInt()
  @Min(0)
  misses!: number;

  @IsOptional()
  @IsInt()
  last_seen!: number | null;

  @IsOptional()
  @IsString()
  last_failure!: string | null;

  /**
   * The verifier shows a stale `alive` as `pending` and says so here; absent from a verifier older than
   * the field. These three are absent or valid, never null: a null `freshness_bound` was read as a bound
   * of 0 s, which called every answer stale.
   */
  @OptionalNotNull()
  @IsBoolean()
  stale?: boolean;

  /** Seconds past which the verifier calls an `alive` stale; absent from a verifier older than the field. */
  @OptionalNotNull()
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(0)
  freshness_bound?: number;

  /** The enrolment's `metadata` JSON text; absent from a verifier older than the field. */
  @OptionalNotNull()
  @IsString()
  metadata?: string;
}

/** What the registrar says about a node without a TPM, for its liveness enrolment. */
export interface LivenessEnrolment {
  readonly mode: LivenessMode;
  readonly ip: string;
  readonly port: number;
  readonly mtlsCert: string;
  readonly proofKey: string | null;
  /** Kept with the enrolment and shown in its status (the keylime driver names its node here). */
  readonly metadata?: Readonly<Record<string, unknown>>;
}

/** The verifier's liveness routes over an admin (mTLS) client; refusals are `KeylimeHttpError`s. */
export class LivenessClient {
  constructor(
    private readonly http: KeylimeClient,
    private readonly apiVersion = '2.3',
  ) {}

  async enrol(agentId: string, enrolment: LivenessEnrolment): Promise<void> {
    await this.http.post(this.path(agentId), {
      identity_mode: enrolment.mode,
      ip: enrolment.ip,
      port: enrolment.port,
      mtls_cert: enrolment.mtlsCert,
      ...(enrolment.proofKey === null ? {} : { proof_key: enrolment.proofKey }),
      ...(enrolment.metadata === undefined ? {} : { metadata: JSON.stringify(enrolment.metadata) }),
    });
  }

  async status(agentId: string): Promise<LivenessStatusReply> {
    return (await this.statusAt(agentId)).status;
  }

  /** `status` with the verifier's clock when it answered (its reply's `Date` header, unix seconds), when it sent one. */
  async statusAt(agentId: string): Promise<{ readonly status: LivenessStatusReply; readonly verifierTime: number | undefined }> {
    const reply = await this.http.get(this.path(agentId), { results: LivenessStatusReply, serverTime: true });
    return { status: reply.results, verifierTime: reply.serverTime };
  }

  /** `DELETE /liveness/{id}`; a 404 answering a resend is done (the client's). */
  async remove(agentId: string): Promise<void> {
    await this.http.delete(this.path(agentId));
  }

  private path(agentId: string): string {
    return `/v${this.apiVersion}/liveness/${encodeURIComponent(agentId)}`;
  }
}
