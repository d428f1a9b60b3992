import { BigEndianReader } from '../bytes/byte-reader.js';
import { BigEndianWriter } from '../bytes/byte-writer.js';
import { TpmParseError } from '../bytes/parse-errors.js';
import {
  TPM_GENERATED_VALUE,
  TPM_ST_ATTEST_CERTIFY,
  TPM_ST_ATTEST_COMMAND_AUDIT,
  TPM_ST_ATTEST_CREATION,
  TPM_ST_ATTEST_NV,
  TPM_ST_ATTEST_NV_DIGEST,
  TPM_ST_ATTEST_QUOTE,
  TPM_ST_ATTEST_SESSION_AUDIT,
  TPM_ST_ATTEST_TIME,
  TPMU_HA_SIZE,
} from './constants.js';
import { marshalTpmlPcrSelectionTo, unmarshalTpmlPcrSelection, type PcrSelection } from './internal/pcr-selection.js';
import { tpm2bView } from './internal/reader-views.js';

/** sizeof(TPMU_NAME) = sizeof(TPMT_HA): the largest TPM2B_NAME and TPM2B_DATA (Part 2 §10.5.3, §10.4.3). */
const MAX_NAME = 66;
/** Generous bound for TPM2B_MAX_NV_BUFFER (MAX_NV_BUFFER_SIZE is 1024 in the reference TPM). */
const MAX_NV_BUFFER = 2048;

/** TPMS_CLOCK_INFO (Part 2 §10.11.1, Table 120). `safe` is TPMI_YES_NO. */
export interface TpmsClockInfo {
  readonly clock: bigint;
  readonly resetCount: number;
  readonly restartCount: number;
  readonly safe: boolean;
}

/** The TPMU_ATTEST arm selected by `type` (Part 2 §10.12.11, Table 132) and its TPMS_*_INFO fields. */
export type TpmsAttestBody =
  | { readonly type: typeof TPM_ST_ATTEST_QUOTE; readonly attested: { readonly pcrSelect: readonly PcrSelection[]; readonly pcrDigest: Uint8Array } }
  | { readonly type: typeof TPM_ST_ATTEST_CERTIFY; readonly attested: { readonly name: Uint8Array; readonly qualifiedName: Uint8Array } }
  | { readonly type: typeof TPM_ST_ATTEST_CREATION; readonly attested: { readonly objectName: Uint8Array; readonly creationHash: Uint8Array } }
  | {
    readonly type: typeof TPM_ST_ATTEST_COMMAND_AUDIT;
    readonly attested: { readonly auditCounter: bigint; readonly digestAlg: number; readonly auditDigest: Uint8Array; readonly commandDigest: Uint8Array };
  }
  | { readonly type: typeof TPM_ST_ATTEST_SESSION_AUDIT; readonly attested: { readonly exclusiveSession: boolean; readonly sessionDigest: Uint8Array } }
  | { readonly type: typeof TPM_ST_ATTEST_TIME; readonly attested: { readonly time: bigint; readonly clockInfo: TpmsClockInfo; readonly firmwareVersion: bigint } }
  | { readonly type: typeof TPM_ST_ATTEST_NV; readonly attested: { readonly indexName: Uint8Array; readonly offset: number; readonly nvContents: Uint8Array } }
  | { readonly type: typeof TPM_ST_ATTEST_NV_DIGEST; readonly attested: { readonly indexName: Uint8Array; readonly nvDigest: Uint8Array } };

/** The fields of a TPMS_ATTEST, without the bytes they came from. */
export type TpmsAttestFields = TpmsAttestBody & {
  /** TPM_GENERATED_VALUE; parsing rejects anything else. */
  readonly magic: number;
  readonly qualifiedSigner: Uint8Array;
  /** The caller's qualifying data (for quotes: the verifier's nonce). */
  readonly extraData: Uint8Array;
  readonly clockInfo: TpmsClockInfo;
  readonly firmwareVersion: bigint;
};

/** A parsed TPMS_ATTEST with the exact bytes it was read from: signatures are checked over `raw`. */
export type TpmsAttest = TpmsAttestFields & { readonly raw: Uint8Array };

function unmarshalClockInfo(r: BigEndianReader): TpmsClockInfo {
  return r.struct('clockInfo', () => ({ clock: r.u64(), resetCount: r.u32(), restartCount: r.u32(), safe: r.bool() }));
}

function marshalClockInfo(w: BigEndianWriter, clock: TpmsClockInfo): void {
  w.u64(clock.clock).u32(clock.resetCount).u32(clock.restartCount).u8(clock.safe ? 1 : 0);
}

const name = (r: BigEndianReader, field: string): Uint8Array => r.struct(field, () => tpm2bView(r, MAX_NAME));
const digest = (r: BigEndianReader, field: string): Uint8Array => r.struct(field, () => tpm2bView(r, TPMU_HA_SIZE));

function unmarshalBody(r: BigEndianReader, type: number): TpmsAttestBody {
  return r.struct('attested', (): TpmsAttestBody => {
    switch (type) {
      case TPM_ST_ATTEST_QUOTE: // TPMS_QUOTE_INFO, Table 126
        return { type, attested: { pcrSelect: unmarshalTpmlPcrSelection(r), pcrDigest: digest(r, 'pcrDigest') } };
      case TPM_ST_ATTEST_CERTIFY: // TPMS_CERTIFY_INFO, Table 123
        return { type, attested: { name: name(r, 'name'), qualifiedName: name(r, 'qualifiedName') } };
      case TPM_ST_ATTEST_CREATION: // TPMS_CREATION_INFO, Table 129
        return { type, attested: { objectName: name(r, 'objectName'), creationHash: digest(r, 'creationHash') } };
      case TPM_ST_ATTEST_COMMAND_AUDIT: // TPMS_COMMAND_AUDIT_INFO, Table 127
        return {
          type,
          attested: { auditCounter: r.u64(), digestAlg: r.u16(), auditDigest: digest(r, 'auditDigest'), commandDigest: digest(r, 'commandDigest') },
        };
      case TPM_ST_ATTEST_SESSION_AUDIT: // TPMS_SESSION_AUDIT_INFO, Table 128
        return { type, attested: { exclusiveSession: r.bool(), sessionDigest: digest(r, 'sessionDigest') } };
      case TPM_ST_ATTEST_TIME: // TPMS_TIME_ATTEST_INFO, Table 122
        return { type, attested: { time: r.u64(), clockInfo: unmarshalClockInfo(r), firmwareVersion: r.u64() } };
      case TPM_ST_ATTEST_NV: // TPMS_NV_CERTIFY_INFO, Table 130
        return { type, attested: { indexName: name(r, 'indexName'), offset: r.u16(), nvContents: r.struct('nvContents', () => tpm2bView(r, MAX_NV_BUFFER)) } };
      case TPM_ST_ATTEST_NV_DIGEST: // TPMS_NV_DIGEST_CERTIFY_INFO, Table 131
        return { type, attested: { indexName: name(r, 'indexName'), nvDigest: digest(r, 'nvDigest') } };
      default:
        throw r.error(`unknown attestation type 0x${type.toString(16)}`);
    }
  });
}

/**
 * Unmarshals a TPMS_ATTEST (Part 2 §10.12.12, Table 133):
 * | magic u32 = TPM_GENERATED_VALUE | type TPMI_ST_ATTEST u16 | qualifiedSigner TPM2B_NAME |
 * | extraData TPM2B_DATA | clockInfo TPMS_CLOCK_INFO (17) | firmwareVersion u64 | attested TPMU_ATTEST |
 * Byte fields and `raw` are views into `r.bytes` (see `reader-views.ts`).
 */
export function unmarshalTpmsAttest(r: BigEndianReader): TpmsAttest {
  return r.struct('TPMS_ATTEST', () => {
    const start = r.offset;
    const magic = r.u32();
    if (magic !== TPM_GENERATED_VALUE) {
      throw r.error(`magic 0x${magic.toString(16)} is not TPM_GENERATED_VALUE 0xff544347`);
    }
    const type = r.u16();
    const qualifiedSigner = name(r, 'qualifiedSigner');
    const extraData = r.struct('extraData', () => tpm2bView(r, MAX_NAME));
    const clockInfo = unmarshalClockInfo(r);
    const firmwareVersion = r.u64();
    const body = unmarshalBody(r, type);
    // Built field by field rather than spread: this runs once per quote on the verifier's hot path.
    return {
      magic, type: body.type, qualifiedSigner, extraData, clockInfo, firmwareVersion, attested: body.attested,
      raw: r.bytes.subarray(start, r.offset),
    } as TpmsAttest;
  });
}

/**
 * Parses a TPMS_ATTEST that fills `bytes` exactly (quote, certify and every other attestation type).
 * Checks structure only: the magic, the type and sizes. It does NOT check the signature, the nonce
 * or anything else the TPM vouches for — that is `verifyQuote` / `verifyCertify`. Throws `TpmParseError`.
 */
export function parseTpmsAttest(bytes: Uint8Array): TpmsAttest {
  return parseTpmsAttestInPlace(bytes.slice());
}

/** `parseTpmsAttest` without the private copy: the result's byte fields alias `bytes`. */
export function parseTpmsAttestInPlace(bytes: Uint8Array): TpmsAttest {
  const r = new BigEndianReader(bytes, TpmParseError);
  const attest = unmarshalTpmsAttest(r);
  r.finish();
  return attest;
}

/** Marshals a TPMS_ATTEST from its fields (`raw`, if present, is ignored). */
export function marshalTpmsAttest(attest: TpmsAttestFields): Uint8Array {
  const w = new BigEndianWriter()
    .u32(attest.magic)
    .u16(attest.type)
    .tpm2b(attest.qualifiedSigner)
    .tpm2b(attest.extraData);
  marshalClockInfo(w, attest.clockInfo);
  w.u64(attest.firmwareVersion);
  switch (attest.type) {
    case TPM_ST_ATTEST_QUOTE:
      marshalTpmlPcrSelectionTo(w, attest.attested.pcrSelect);
      w.tpm2b(attest.attested.pcrDigest);
      break;
    case TPM_ST_ATTEST_CERTIFY:
      w.tpm2b(attest.attested.name).tpm2b(attest.attested.qualifiedName);
      break;
    case TPM_ST_ATTEST_CREATION:
      w.tpm2b(attest.attested.objectName).tpm2b(attest.attested.creationHash);
      break;
    case TPM_ST_ATTEST_COMMAND_AUDIT: {
      const a = attest.attested;
      w.u64(a.auditCounter).u16(a.digestAlg).tpm2b(a.auditDigest).tpm2b(a.commandDigest);
      break;
    }
    case TPM_ST_ATTEST_SESSION_AUDIT:
      w.u8(attest.attested.exclusiveSession ? 1 : 0).tpm2b(attest.attested.sessionDigest);
      break;
    case TPM_ST_ATTEST_TIME:
      w.u64(attest.attested.time);
      marshalClockInfo(w, attest.attested.clockInfo);
      w.u64(attest.attested.firmwareVersion);
      break;
    case TPM_ST_ATTEST_NV:
      w.tpm2b(attest.attested.indexName).u16(attest.attested.offset).tpm2b(attest.attested.nvContents);
      break;
    case TPM_ST_ATTEST_NV_DIGEST:
      w.tpm2b(attest.attested.indexName).tpm2b(attest.attested.nvDigest);
      break;
  }
  return w.finish();
}
