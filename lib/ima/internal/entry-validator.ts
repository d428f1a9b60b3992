import type { KeyObject } from 'node:crypto';
import type { CompiledRuntimePolicy } from '../compiled-policy.js';
import { IMA_EVENTS, type ImaFailure } from '../ima-failure.js';
import type { UntrustedImaEntry } from './ima-entry.js';
import { readPublicKeyBlob, UnsupportedImaKey, type ImaKeyrings } from '../ima-keyring.js';
import { verifyImaSignature } from './ima-signature.js';

/**
 * Content rules for one entry whose template hash already checked out (Keylime `ima.py`:
 * `_validate_ima_ng`, `_validate_ima_sig`, `_validate_ima_buf`). Returns the failure, or
 * `undefined` when the entry is acceptable.
 *
 * - `ima`, `ima-ng`: the path must be excluded, or listed with this digest.
 * - `ima-sig` (and `ima-modsig`, whose `sig` field is the same xattr signature): a valid signature
 *   from a known key accepts the entry (unless excluded, which accepts it anyway); otherwise the
 *   `ima-ng` rule applies when there is a policy; with keyrings but no policy the entry fails.
 *   The appended `modsig` itself is not verified: `ima-modsig` entries are held to their digest.
 * - `ima-buf`: a buffer holding a key loaded onto a keyring not ignored must have its digest in
 *   `keyrings[name]`, and the key is then learnt (used for later `ima-sig` entries); without a policy
 *   the key is not learnt (nothing vouches for it); a key of an unusable type fails; any other buffer
 *   must have its digest in `ima-buf[name]`.
 * Without a policy, only the signature rule can fail (Keylime's behaviour with no runtime policy).
 */
export interface ValidationContext {
  readonly policy: CompiledRuntimePolicy | undefined;
  /** Keys to check signatures with; `undefined` is Keylime's "no keyrings at all". */
  readonly keyrings: ImaKeyrings | undefined;
  /** Keys learnt from `ima-buf` entries this pass, in line order (filled in by this module). */
  readonly learnedKeys: LearnedKey[];
  /** Extra accepted `boot_aggregate` digests (derived from the UEFI log by the caller). */
  readonly bootAggregates: readonly string[];
}

/** A key an `ima-buf` entry loaded onto the keyring `ring`, with the entry's digest (hex; '' when not known). */
export interface LearnedKey {
  readonly ring: string;
  readonly key: KeyObject;
  readonly keyId: number;
  readonly digest: string;
}

type Outcome = Omit<ImaFailure, 'line'> | undefined;

function lookup(ctx: ValidationContext, map: ReadonlyMap<string, readonly string[]>, path: string): readonly string[] | undefined {
  const listed = map.get(path);
  if (path !== 'boot_aggregate' || ctx.bootAggregates.length === 0 || map !== ctx.policy?.digests) {
    return listed;
  }
  return [...(listed ?? []), ...ctx.bootAggregates];
}

/** The `ima-ng` rule against one of the policy's digest maps. */
function checkDigest(
  ctx: ValidationContext,
  policy: CompiledRuntimePolicy,
  map: ReadonlyMap<string, readonly string[]>,
  path: string,
  hex: string,
): Outcome {
  if (policy.isExcluded(path)) {
    return undefined;
  }
  const accepted = lookup(ctx, map, path);
  if (accepted === undefined) {
    return { path, eventId: IMA_EVENTS.notInAllowlist, context: { message: `File not found in allowlist: ${path}` } };
  }
  if (!accepted.includes(hex)) {
    return {
      path,
      eventId: IMA_EVENTS.runtimePolicyHash,
      context: { message: 'Hash not found in runtime policy', got: hex, expected: [...accepted] },
    };
  }
  return undefined;
}

function checkSigned(ctx: ValidationContext, entry: UntrustedImaEntry): Outcome {
  const { policy, keyrings } = ctx;
  if (keyrings !== undefined && entry.signature.length > 0) {
    if (policy?.isExcluded(entry.path) === true || verifyImaSignature(entry.signature, entry.digest, keyrings)) {
      return undefined;
    }
  }
  if (policy !== undefined) {
    return checkDigest(ctx, policy, policy.digests, entry.path, entry.digest.hex);
  }
  if (keyrings === undefined) {
    return undefined;
  }
  return {
    path: entry.path,
    eventId: IMA_EVENTS.invalidSignature,
    context: { message: `signature for file ${entry.path} could not be validated` },
  };
}

function checkBuffer(ctx: ValidationContext, entry: UntrustedImaEntry): Outcome {
  const { policy } = ctx;
  let key: ReturnType<typeof readPublicKeyBlob>;
  try {
    key = readPublicKeyBlob(entry.buffer);
  } catch (error) {
    if (error instanceof UnsupportedImaKey) {
      return {
        path: entry.path,
        eventId: IMA_EVENTS.invalidKey,
        context: { message: `key from ${entry.path} does not have a supported key: ${error.message}` },
      };
    }
    throw error;
  }
  if (key === undefined) {
    return policy === undefined ? undefined : checkDigest(ctx, policy, policy.imaBuf, entry.path, entry.digest.hex);
  }
  const ignored = policy?.ignoredKeyrings;
  if (ignored !== undefined && (ignored.has('*') || ignored.has(entry.path))) {
    return undefined;
  }
  if (policy === undefined) {
    // Nothing vouches for the key, so it is not learnt: Keylime's verifier checks it against its empty
    // policy (no keyrings listed) when none is enrolled. The entry itself passes: without a policy only
    // the signature rule can fail.
    return undefined;
  }
  const failure = checkDigest(ctx, policy, policy.keyrings, entry.path, entry.digest.hex);
  if (failure === undefined && ctx.keyrings !== undefined) {
    ctx.keyrings.learn(key.key, key.keyId);
    ctx.learnedKeys.push({ ring: entry.path, key: key.key, keyId: key.keyId, digest: entry.digest.hex });
  }
  return failure;
}

/** Applies the content rules of `entry`'s template. */
export function validateEntryContent(ctx: ValidationContext, entry: UntrustedImaEntry): Outcome {
  switch (entry.templateName) {
    case 'ima':
    case 'ima-ng':
      return ctx.policy === undefined ? undefined : checkDigest(ctx, ctx.policy, ctx.policy.digests, entry.path, entry.digest.hex);
    case 'ima-sig':
    case 'ima-modsig':
      return checkSigned(ctx, entry);
    case 'ima-buf':
      return checkBuffer(ctx, entry);
  }
}
