import { createHash, generateKeyPair, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { newRsaKeyPair } from '../../pki/rsa-key-source.js';
import { TPM_ALG_ECDSA, TPM_ALG_RSASSA, hashInfo, hashInfoByName, type TpmHashInfo } from '../../tpm/constants.js';
import { tpmObjectName } from '../../tpm/object-name.js';
import { buildCertify, buildQuote } from './sign-quote.js';
import { EK_TEMPLATE_ECC_P256, EK_TEMPLATE_RSA_2048, eccAkTemplate, rsaAkTemplate } from './templates.js';
import { marshalTpm2bPublic, type TpmtPublic } from '../../tpm/tpmt-public.js';
import { tpmtPublicFromKey } from '../../tpm/tpmt-public-key.js';
import { checkDigest, checkHashAlgorithm, checkPcrIndex, checkPcrList, checkQualifyingData, checkQuoteRequest, checkResettablePcr } from '../port-checks.js';
import { TpmAccessError } from '../tpm-access-error.js';
import type { AkInfo, CertifyResult, EkAlgorithm, EkInfo, PcrExtend, QuoteRequest, QuoteResult, Tpm, TpmHashAlgorithm } from '../tpm-port.js';
import { activateCredentialInSoftware, type EkKeyPair } from './credential-activation.js';
import { PcrBanks } from './pcr-banks.js';

const generateKeyPairAsync = promisify(generateKeyPair);

export interface SoftwareTpmOptions {
  /** EK family (default `rsa`: RSA 2048, template L-1; `ecc`: NIST P-256, template L-2). */
  ekAlgorithm?: EkAlgorithm;
  /**
   * AK family (default: the EK's): `rsa` (RSA 2048, RSASSA) or `ecc` (P-256, ECDSA). A TPM may pair
   * either with either; an ECC EK with RSA AKs makes cheap TPMs that still sign as Keylime's default does.
   */
  akAlgorithm?: EkAlgorithm;
  /** Active PCR banks (default sha1 and sha256). */
  banks?: readonly TpmHashAlgorithm[];
  /**
   * Issues the EK certificate (DER) for the EK public key, e.g. `SoftwareEkCa.issue`. Without it the
   * EK certificate is null, and a registrar accepts this TPM only with its EK check relaxed.
   */
  issueEkCertificate?: (ekPublicKey: KeyObject) => Uint8Array | Promise<Uint8Array>;
  /** TPMS_ATTEST.firmwareVersion (default 0x20240101_00000001). */
  firmwareVersion?: bigint;
}

/** An AK as the software TPM holds it. */
type StoredAk = AkInfo & { readonly privateKey: KeyObject; readonly qualifiedName: Uint8Array };

/** TPM_RH_ENDORSEMENT: a hierarchy's qualified name is its handle (TPM 2.0 Part 1 §16). */
const TPM_RH_ENDORSEMENT = 0x4000000b;

/** Creates a software TPM: fresh EK (and certificate, if an issuer is given), PCRs at their reset values. */
export async function createSoftwareTpm(options: SoftwareTpmOptions = {}): Promise<SoftwareTpm> {
  const ekAlgorithm = options.ekAlgorithm ?? 'rsa';
  const { privateKey, publicKey } = await newKeyPair(ekAlgorithm);
  const publicArea = tpmtPublicFromKey(publicKey, ekAlgorithm === 'rsa' ? EK_TEMPLATE_RSA_2048 : EK_TEMPLATE_ECC_P256);
  const certificate = options.issueEkCertificate === undefined ? null : await options.issueEkCertificate(publicKey);
  return new SoftwareTpm(options, { publicArea, privateKey }, certificate);
}

/**
 * An in-process TPM behind the same `Tpm` port, for simulating hundreds of nodes (benchmarks) and for
 * machines without swtpm. Its EK and AKs are node:crypto key pairs with the public areas a real TPM
 * reports for the same templates; its quotes are real TPMS_ATTEST + TPMT_SIGNATURE + tpm2-tools PCR
 * blob bytes, signed by the AK, which `verifyQuote` and `tpm2_checkquote` accept; activateCredential
 * runs the TPM's algorithm (Part 1 §24) on the EK private key.
 *
 * It is NOT a root of trust: keys live in this process's memory. Never use it where swtpm or a real
 * TPM is available, and never trust its EK by default (its certificate, if any, comes from a test CA).
 */
export class SoftwareTpm implements Tpm {
  readonly kind = 'software' as const;
  private readonly pcrs: PcrBanks;
  private readonly aks = new Map<TpmHashAlgorithm, StoredAk>();
  private lastAk: (AkInfo & { privateKey: KeyObject }) | undefined;
  private readonly ekAlgorithm: EkAlgorithm;
  private readonly akAlgorithm: EkAlgorithm;
  /** The scheme the AK signs quotes and certifications with (its template's: RSASSA or ECDSA). */
  private readonly akSignatureScheme: number;
  private readonly firmwareVersion: bigint;
  private readonly clockStart = performance.now();
  private resetCount = 0;
  private restartCount = 0;
  private closed = false;

  constructor(
    options: SoftwareTpmOptions,
    private readonly ek: EkKeyPair,
    private readonly ekCertificate: Uint8Array | null,
  ) {
    this.ekAlgorithm = options.ekAlgorithm ?? 'rsa';
    this.akAlgorithm = options.akAlgorithm ?? this.ekAlgorithm;
    this.akSignatureScheme = this.akAlgorithm === 'rsa' ? TPM_ALG_RSASSA : TPM_ALG_ECDSA;
    this.pcrs = new PcrBanks(options.banks ?? ['sha1', 'sha256']);
    this.firmwareVersion = options.firmwareVersion ?? 0x20240101_00000001n;
  }

  /** A power cycle: TPM Reset (PCRs back to reset values, resetCount + 1, restartCount 0). Keys survive. */
  reboot(): void {
    this.pcrs.reset();
    this.resetCount += 1;
    this.restartCount = 0;
  }

  async ensureEk(): Promise<EkInfo> {
    this.checkOpen();
    return { ekPublic: marshalTpm2bPublic(this.ek.publicArea), ekCertificate: this.ekCertificate?.slice() ?? null, ekAlgorithm: this.ekAlgorithm };
  }

  async ensureAk(hashAlg: TpmHashAlgorithm): Promise<AkInfo> {
    this.checkOpen();
    const ak = await this.ak(checkHashAlgorithm(hashAlg));
    this.lastAk = ak;
    return publicPart(ak);
  }

  async activateCredential(blob: Uint8Array): Promise<Uint8Array> {
    this.checkOpen();
    if (this.lastAk === undefined) {
      throw new TpmAccessError('activateCredential needs an AK: call ensureAk() first');
    }
    return activateCredentialInSoftware(this.ek, this.lastAk.akName, blob);
  }

  async extendPcr(index: number, bank: TpmHashAlgorithm, digest: Uint8Array): Promise<void> {
    await this.extendPcrs([{ index, bank, digest }]);
  }

  async extendPcrs(entries: readonly PcrExtend[]): Promise<void> {
    this.checkOpen();
    for (const { index, bank, digest } of entries) {
      checkPcrIndex(index);
      checkDigest(bank, digest);
    }
    for (const { index, bank, digest } of entries) {
      this.pcrs.extend(index, bank, digest);
    }
  }

  async readPcrs(bank: TpmHashAlgorithm, indices: readonly number[]): Promise<Map<number, Uint8Array>> {
    this.checkOpen();
    checkHashAlgorithm(bank);
    return new Map(checkPcrList(indices).map((index) => [index, this.pcrs.read(bank, index)]));
  }

  async resetPcr(index: number): Promise<void> {
    this.checkOpen();
    this.pcrs.resetPcr(checkResettablePcr(index));
  }

  /**
   * TPM2_Quote (Part 3 §18.4): TPMS_ATTEST with the AK's qualified name, the nonce as extraData, the
   * clock, and TPMS_QUOTE_INFO {selection, pcrDigest = H_hashAlg(selected PCR values, ascending)},
   * signed with the AK's scheme over H_hashAlg(attest).
   */
  async quote(request: QuoteRequest): Promise<QuoteResult> {
    this.checkOpen();
    const { nonce, pcrs, hashAlg } = checkQuoteRequest(request);
    const ak = await this.ak(hashAlg);
    return buildQuote({
      akPrivateKey: ak.privateKey,
      akName: ak.qualifiedName,
      sigAlg: this.akSignatureScheme,
      hashAlg,
      pcrs: new Map(pcrs.map((index) => [index, this.pcrs.read(hashAlg, index)])),
      nonce,
      clockInfo: { clock: this.clock(), resetCount: this.resetCount, restartCount: this.restartCount, safe: true },
      firmwareVersion: this.firmwareVersion,
    });
  }

  /** TPM2_Certify (Part 3 §18.2) of the AK by itself: TPMS_CERTIFY_INFO {name, qualifiedName}, signed like a quote. */
  async certifyAk(hashAlg: TpmHashAlgorithm, qualifyingData: Uint8Array): Promise<CertifyResult> {
    this.checkOpen();
    const data = checkQualifyingData(qualifyingData);
    const ak = await this.ak(hashAlg);
    return buildCertify({
      akPrivateKey: ak.privateKey,
      akName: ak.akName,
      qualifiedName: ak.qualifiedName,
      sigAlg: this.akSignatureScheme,
      hashAlg,
      qualifyingData: data,
      clockInfo: { clock: this.clock(), resetCount: this.resetCount, restartCount: this.restartCount, safe: true },
      firmwareVersion: this.firmwareVersion,
    });
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private async ak(hashAlg: TpmHashAlgorithm): Promise<StoredAk> {
    const existing = this.aks.get(hashAlg);
    if (existing !== undefined) {
      return existing;
    }
    const hash = hashOf(hashAlg);
    const { privateKey, publicKey } = await newKeyPair(this.akAlgorithm);
    const publicArea = tpmtPublicFromKey(publicKey, this.akAlgorithm === 'rsa' ? rsaAkTemplate(hash.algId) : eccAkTemplate(hash.algId));
    const created = this.aks.get(hashAlg);
    if (created !== undefined) {
      return created; // a concurrent call finished first: keep one AK per hash, as a persisted handle would
    }
    const akName = tpmObjectName(publicArea);
    const ak = {
      akPublic: marshalTpm2bPublic(publicArea),
      akName,
      handle: (0x81000100 | (hash.algId & 0xff)) >>> 0,
      hashAlg,
      signAlg: this.akAlgorithm === 'rsa' ? ('rsassa' as const) : ('ecdsa' as const),
      privateKey,
      // Fixed for the AK's life: computed once, not on every quote.
      qualifiedName: this.qualifiedName(publicArea, akName),
    };
    this.aks.set(hashAlg, ak);
    return ak;
  }

  /** QN(AK) = nameAlg ‖ H(QN(EK) ‖ Name(AK)), QN(EK) = nameAlg ‖ H(TPM_RH_ENDORSEMENT ‖ Name(EK)) (Part 1 §16). */
  private qualifiedName(akPublic: TpmtPublic, akName: Uint8Array): Uint8Array {
    const hierarchy = new Uint8Array(4);
    new DataView(hierarchy.buffer).setUint32(0, TPM_RH_ENDORSEMENT, false);
    const ekQn = qualify(this.ek.publicArea.nameAlg, hierarchy, tpmObjectName(this.ek.publicArea));
    return qualify(akPublic.nameAlg, ekQn, akName);
  }

  /** TPMS_CLOCK_INFO.clock: milliseconds the TPM has been powered, monotonic. */
  private clock(): bigint {
    return BigInt(Math.floor(performance.now() - this.clockStart));
  }

  private checkOpen(): void {
    if (this.closed) {
      throw new TpmAccessError('the TPM adapter is closed');
    }
  }
}

function qualify(nameAlg: number, parentQn: Uint8Array, name: Uint8Array): Uint8Array {
  const hash = hashOfId(nameAlg);
  const digest = createHash(hash.nodeName).update(parentQn).update(name).digest();
  const out = new Uint8Array(2 + digest.length);
  new DataView(out.buffer).setUint16(0, nameAlg, false);
  out.set(digest, 2);
  return out;
}

function newKeyPair(family: EkAlgorithm): Promise<{ privateKey: KeyObject; publicKey: KeyObject }> {
  return family === 'rsa'
    ? newRsaKeyPair()
    : generateKeyPairAsync('ec', { namedCurve: 'prime256v1' });
}

function hashOf(hashAlg: TpmHashAlgorithm): TpmHashInfo {
  const hash = hashInfoByName(hashAlg);
  if (hash === undefined) {
    throw new TpmAccessError(`hash algorithm ${hashAlg} is unknown`);
  }
  return hash;
}

function hashOfId(algId: number): TpmHashInfo {
  const hash = hashInfo(algId);
  if (hash === undefined) {
    throw new TpmAccessError(`name algorithm 0x${algId.toString(16)} is unknown`);
  }
  return hash;
}

function publicPart(ak: AkInfo): AkInfo {
  return { akPublic: ak.akPublic.slice(), akName: ak.akName.slice(), handle: ak.handle, hashAlg: ak.hashAlg, signAlg: ak.signAlg };
}
