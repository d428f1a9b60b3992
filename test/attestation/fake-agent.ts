import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import type { AgentQuoteReply } from '../../lib/attestation/internal/quote-reply.js';
import { parseEventLog } from '../../lib/mb/parse-event-log.js';
import { isExtended } from '../../lib/mb/replay.js';
import { imaExtendDigest, imaNgEntry } from '../../lib/tpm-access/ima-ng-template.js';
import { buildCertify } from '../../lib/tpm-access/software/sign-quote.js';
import {
  TPM_ALG_ECC,
  TPM_ALG_ECDSA,
  TPM_ALG_NULL,
  TPM_ALG_RSA,
  TPM_ALG_RSASSA,
  TPM_ALG_SHA1,
  TPM_ALG_SHA256,
  TPM_ECC_NIST_P256,
  TPM_GENERATED_VALUE,
  TPM_ST_ATTEST_QUOTE,
} from '../../lib/tpm/constants.js';
import { tpmObjectName } from '../../lib/tpm/object-name.js';
import { marshalPcrBlob } from '../../lib/tpm/pcr-blob.js';
import { marshalTpmsAttest, type TpmsClockInfo } from '../../lib/tpm/tpms-attest.js';
import { marshalTpm2bPublic, type TpmtPublic } from '../../lib/tpm/tpmt-public.js';
import { tpmtPublicFromKey } from '../../lib/tpm/tpmt-public-key.js';
import { marshalTpmtSignature } from '../../lib/tpm/tpmt-signature.js';
import { newRsaKeyPairSync } from '../../lib/pki/rsa-key-source.js';

/** RSA-2048 key generation takes a second or two; tests reuse key pairs by slot. */
const RSA_KEYS = new Map<number, { publicKey: KeyObject; privateKey: KeyObject }>();

function rsaKeyPair(slot: number): { publicKey: KeyObject; privateKey: KeyObject } {
  let pair = RSA_KEYS.get(slot);
  if (pair === undefined) {
    pair = newRsaKeyPairSync();
    RSA_KEYS.set(slot, pair);
  }
  return pair;
}

/** AK attributes of Keylime/tpm2-tools AKs: fixedTPM, fixedParent, sensitiveDataOrigin, userWithAuth, restricted, sign. */
const AK_ATTRIBUTES = 0x00050072;

export type FakeBank = 'sha1' | 'sha256';
const ALG_ID: Record<FakeBank, number> = { sha1: TPM_ALG_SHA1, sha256: TPM_ALG_SHA256 };
const SIZE: Record<FakeBank, number> = { sha1: 20, sha256: 32 };

export interface FakeAgentOptions {
  /** Which cached RSA AK/NK key pairs to use: agents with different identities have different keys. */
  readonly identity?: number;
  readonly bank?: FakeBank;
  readonly akType?: 'rsa' | 'ecc';
  /** A real UEFI event log replayed into the PCRs at "boot" (and sent when PCR 0 is requested). */
  readonly bootLog?: Uint8Array;
  /** An RSA AK of this many bits, made afresh (a weak 1024-bit AK, say) instead of the cached 2048-bit one. */
  readonly akRsaBits?: number;
}

export interface QuoteRequest {
  readonly nonce: string;
  /** Bit i = PCR i (Keylime's `mask`); PCR 16 is always added. */
  readonly mask: number;
  readonly imaEntry?: number;
  /** `partial=1`: leave `pubkey` out. */
  readonly partial?: boolean;
  /** Leave `mb_measurement_list` out even when PCR 0 is asked for: the caller adds it (a huge log, encoded once). */
  readonly leaveBootLogOut?: boolean;
}

/**
 * An in-memory Keylime agent for engine tests: its "TPM" is a map of PCR values plus a real AK key
 * pair, so the quotes it answers with are genuine TPMS_ATTEST / TPMT_SIGNATURE / PCR blob bytes a
 * verifier cannot tell from a TPM's. IMA lines are real ima-ng entries with correct template hashes.
 */
export class FakeAgent {
  readonly bank: FakeBank;
  readonly akPublic: TpmtPublic;
  /** `ak_tpm` as the registrar stores it: base64 TPM2B_PUBLIC. */
  readonly akTpm: string;
  readonly nkPem: string;
  readonly pcrs = new Map<number, Uint8Array>();
  readonly imaLines: string[] = [];
  clock: TpmsClockInfo = { clock: 100_000n, resetCount: 3, restartCount: 0, safe: true };
  private readonly akPrivate: KeyObject;
  private readonly bootLog: Uint8Array | undefined;

  constructor(options: FakeAgentOptions = {}) {
    this.bank = options.bank ?? 'sha256';
    const ecc = options.akType === 'ecc';
    const identity = options.identity ?? 0;
    const rsaBits = options.akRsaBits ?? 2048;
    const pair = ecc
      ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : rsaBits === 2048
        ? rsaKeyPair(2 * identity)
        : generateKeyPairSync('rsa', { modulusLength: rsaBits });
    this.akPrivate = pair.privateKey;
    const common = { nameAlg: TPM_ALG_SHA256, objectAttributes: AK_ATTRIBUTES, authPolicy: new Uint8Array(0) };
    const scheme = { scheme: ecc ? TPM_ALG_ECDSA : TPM_ALG_RSASSA, hashAlg: ALG_ID[this.bank] };
    this.akPublic = ecc
      ? tpmtPublicFromKey(pair.publicKey, {
        ...common,
        type: TPM_ALG_ECC,
        parameters: { symmetric: { algorithm: TPM_ALG_NULL }, scheme, curveId: TPM_ECC_NIST_P256, kdf: { scheme: TPM_ALG_NULL } },
      })
      : tpmtPublicFromKey(pair.publicKey, {
        ...common,
        type: TPM_ALG_RSA,
        parameters: { symmetric: { algorithm: TPM_ALG_NULL }, scheme, keyBits: rsaBits, exponent: 0 },
      });
    this.akTpm = Buffer.from(marshalTpm2bPublic(this.akPublic)).toString('base64');
    this.nkPem = rsaKeyPair(2 * identity + 1).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    this.bootLog = options.bootLog;
    this.boot();
  }

  /** Power cycle: PCRs back to zero, boot log replayed, IMA log restarted with boot_aggregate. */
  boot(): void {
    this.pcrs.clear();
    for (let pcr = 0; pcr < 24; pcr += 1) {
      this.pcrs.set(pcr, new Uint8Array(SIZE[this.bank]).fill(pcr >= 17 && pcr <= 22 ? 0xff : 0));
    }
    if (this.bootLog !== undefined) {
      const log = parseEventLog(this.bootLog);
      if (log.startupLocality !== null) {
        this.pcrs.get(0)?.fill(log.startupLocality, SIZE[this.bank] - 1);
      }
      for (const event of log.events.filter(isExtended)) {
        const digest = event.digests.find((d) => d.alg.name === this.bank);
        if (digest !== undefined) {
          this.extend(event.pcrIndex, digest.digest);
        }
      }
    }
    this.imaLines.length = 0;
    const aggregate = createHash('sha256');
    for (let pcr = 0; pcr <= 9; pcr += 1) {
      aggregate.update(this.pcrs.get(pcr) as Uint8Array);
    }
    this.recordIma(imaNgEntry('sha256', new Uint8Array(aggregate.digest()), 'boot_aggregate'));
  }

  /** PCR_Extend in the agent's bank. */
  extend(pcr: number, digest: Uint8Array): void {
    const old = this.pcrs.get(pcr) as Uint8Array;
    this.pcrs.set(pcr, new Uint8Array(createHash(this.bank).update(old).update(digest).digest()));
  }

  /** The kernel measuring a file: one ima-ng line and the PCR 10 extend. */
  measure(path: string, content: string | Uint8Array): string {
    const digest = new Uint8Array(createHash('sha256').update(content).digest());
    return this.recordIma(imaNgEntry('sha256', digest, path));
  }

  /**
   * Replaces the IMA log with recorded ASCII lines (a real node's log) and replays PCR 10 from zero.
   * Only for the sha1 bank, where each extend is the logged template hash (0xFF… for a violation).
   */
  replaceImaLog(lines: readonly string[]): void {
    if (this.bank !== 'sha1') {
      throw new Error('recorded IMA lines can only be replayed into the sha1 bank');
    }
    this.imaLines.length = 0;
    this.pcrs.set(10, new Uint8Array(20));
    for (const line of lines) {
      const hash = Buffer.from(line.split(' ')[1] ?? '', 'hex');
      this.imaLines.push(line);
      this.extend(10, hash.every((byte) => byte === 0) ? new Uint8Array(20).fill(0xff) : hash);
    }
  }

  /** Answers `GET /quotes/integrity` like the Rust agent (spec §2, §3.3). */
  reply(request: QuoteRequest): AgentQuoteReply {
    this.pcrs.set(16, new Uint8Array(SIZE[this.bank]));
    this.extend(16, new Uint8Array(createHash(this.bank).update(this.nkPem, 'utf8').digest()));
    const selected = [...Array(24).keys()].filter((pcr) => pcr === 16 || ((request.mask >> pcr) & 1) === 1);
    const values = new Map(selected.map((pcr) => [pcr, this.pcrs.get(pcr) as Uint8Array]));
    const entry = request.imaEntry ?? 0;
    const start = entry > this.imaLines.length ? 0 : entry;
    const reply: AgentQuoteReply = {
      quote: this.quote(Buffer.from(request.nonce, 'ascii'), values),
      hash_alg: this.bank,
      enc_alg: 'rsa2048',
      sign_alg: this.akPublic.type === TPM_ALG_ECC ? 'ecdsa' : 'rsassa',
      ima_measurement_list: this.imaLines.slice(start).map((line) => `${line}\n`).join(''),
      ima_measurement_list_entry: start,
      ...(request.partial === true ? {} : { pubkey: this.nkPem }),
      ...(this.bootLog !== undefined && (request.mask & 1) === 1 && request.leaveBootLogOut !== true
        ? { mb_measurement_list: Buffer.from(this.bootLog).toString('base64') }
        : {}),
    };
    return reply;
  }

  /** A quote string over `values` with qualifying data `nonce`; the clock advances by one second. */
  quote(nonce: Uint8Array, values: ReadonlyMap<number, Uint8Array>): string {
    this.clock = { ...this.clock, clock: this.clock.clock + 1000n };
    const digest = createHash(this.bank);
    for (const pcr of [...values.keys()].sort((a, b) => a - b)) {
      digest.update(values.get(pcr) as Uint8Array);
    }
    const attest = marshalTpmsAttest({
      magic: TPM_GENERATED_VALUE,
      type: TPM_ST_ATTEST_QUOTE,
      qualifiedSigner: tpmObjectName(this.akPublic),
      extraData: nonce,
      clockInfo: this.clock,
      firmwareVersion: 0x2023_0101n,
      attested: {
        pcrSelect: [{ hashAlg: ALG_ID[this.bank], sizeofSelect: 3, pcrs: [...values.keys()].sort((a, b) => a - b) }],
        pcrDigest: new Uint8Array(digest.digest()),
      },
    });
    const signature = this.signAttest(attest);
    const blob = marshalPcrBlob(this.bank, values);
    const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64');
    return `r${b64(attest)}:${b64(signature)}:${b64(blob)}`;
  }

  /** TPM2_Certify of the AK by itself over `challenge` (a push session's proof of possession), sha256. */
  certifyAk(challenge: Uint8Array): { attest: Uint8Array; signature: Uint8Array } {
    const name = tpmObjectName(this.akPublic);
    const sigAlg = this.akPublic.type === TPM_ALG_ECC ? TPM_ALG_ECDSA : TPM_ALG_RSASSA;
    return buildCertify({ akPrivateKey: this.akPrivate, akName: name, qualifiedName: name, sigAlg, hashAlg: 'sha256', qualifyingData: challenge, clockInfo: this.clock });
  }

  private signAttest(attest: Uint8Array): Uint8Array {
    const hashAlg = ALG_ID[this.bank];
    if (this.akPublic.type === TPM_ALG_ECC) {
      const der = sign(this.bank, attest, { key: this.akPrivate, dsaEncoding: 'ieee-p1363' });
      return marshalTpmtSignature({ sigAlg: TPM_ALG_ECDSA, hashAlg, signatureR: der.subarray(0, 32), signatureS: der.subarray(32) });
    }
    return marshalTpmtSignature({ sigAlg: TPM_ALG_RSASSA, hashAlg, sig: sign(this.bank, attest, this.akPrivate) });
  }

  private recordIma(entry: ReturnType<typeof imaNgEntry>): string {
    this.imaLines.push(entry.line);
    this.extend(10, imaExtendDigest(entry, this.bank, SIZE[this.bank]));
    return entry.line;
  }
}
