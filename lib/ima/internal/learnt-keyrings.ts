import type { CompiledRuntimePolicy } from '../compiled-policy.js';
import { ImaKeyring, type ImaKeyringJson } from '../ima-keyring.js';
import { RuntimePolicyError } from './runtime-policy-error.js';
import type { LearnedKey } from './entry-validator.js';

/**
 * The keys earlier rounds learnt from quote-bound `ima-buf` lines, as stored (`learnedKeyrings`), and
 * back. Each key is stored with the digest its line logged (`digests`, beside `pubkeys` and `keyids`),
 * so that a later round trusts it only while its policy would let that line load it now
 * (entry-validator.ts's rule): the keyring is not ignored, and the policy excludes the keyring's name
 * or lists that digest under `keyrings[name]`. A key whose digest the policy no longer lists (revoked)
 * is dropped, as is every key with no runtime policy (before 2026-12 keys were learnt without one).
 * A key stored before digests were kept (digest '') is held to the keyring's name only: dropping it
 * would fail every such healthy node once, on upgrade; any replay from entry 0 stores its digest.
 * Checked at every load, not by a migration: the policy is the agent's current one, which may change
 * at any time. Not bounded as a keyring given with a request is (`MAX_IMA_KEYRING_KEYS`): they are
 * the node's own state, which the verifier wrote.
 */
export function loadLearntKeys(stored: Readonly<Record<string, ImaKeyringJson>>, policy: CompiledRuntimePolicy | undefined): LearnedKey[] {
  const keys: LearnedKey[] = [];
  if (policy === undefined || policy.ignoredKeyrings.has('*')) {
    return keys;
  }
  for (const [name, json] of Object.entries(stored)) {
    const field = `state.learnedKeyrings[${JSON.stringify(name)}]`;
    if (policy.ignoredKeyrings.has(name)) {
      continue;
    }
    const listed = policy.keyrings.get(name);
    const excluded = policy.isExcluded(name);
    if (listed === undefined && !excluded) {
      continue;
    }
    const digests = json.digests ?? [];
    if (json.keyids.length > json.pubkeys.length || digests.length > json.pubkeys.length) {
      throw new RuntimePolicyError(field, `has ${json.keyids.length} ids and ${digests.length} digests for ${json.pubkeys.length} keys`);
    }
    json.pubkeys.forEach((pubkey, index) => {
      const digest = digests[index] ?? '';
      if (digest !== '' && !excluded && listed?.includes(digest) !== true) {
        return;
      }
      const keyId = json.keyids[index];
      const one = ImaKeyring.fromJson({ pubkeys: [pubkey], keyids: keyId === undefined ? [] : [keyId] }, `${field}[${index}]`);
      for (const [id, key] of one.entries()) {
        keys.push({ ring: name, key, keyId: id, digest });
      }
    });
  }
  return keys;
}

/** The stored form of `keys`, by keyring; of two keys with one id on a keyring, the later is kept. */
export function storeLearntKeys(keys: readonly LearnedKey[]): Record<string, ImaKeyringJson> {
  const rings = new Map<string, { ring: ImaKeyring; digests: Map<number, string> }>();
  for (const { ring: name, key, keyId, digest } of keys) {
    let held = rings.get(name);
    if (held === undefined) {
      held = { ring: new ImaKeyring(), digests: new Map() };
      rings.set(name, held);
    }
    held.ring.add(key, keyId);
    held.digests.set(keyId >>> 0, digest);
  }
  const out: Record<string, ImaKeyringJson> = {};
  for (const [name, { ring, digests }] of rings) {
    const json = ring.toJSON();
    out[name] = { ...json, digests: json.keyids.map((id) => digests.get(id) ?? '') };
  }
  return out;
}
