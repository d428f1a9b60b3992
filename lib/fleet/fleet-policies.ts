import { createHash, randomBytes } from 'node:crypto';
import { createRuntimePolicy } from '../ima/create-runtime-policy.js';
import type { RuntimePolicy } from '../ima/runtime-policy.js';
import { createRefstate } from '../mb/create-refstate.js';
import type { MbRefstate } from '../mb/mb-refstate.js';
import { parseEventLog } from '../mb/parse-event-log.js';
import { imaNgEntry } from '../tpm-access/ima-ng-template.js';

/** A file a simulated node "runs": its path and the SHA-256 of its content. */
export interface CatalogFile {
  readonly path: string;
  readonly digest: Uint8Array;
}

/** Size of the known-good file set every simulated node runs from. */
export const CATALOG_SIZE = 512;

/**
 * The fleet's known-good software: `CATALOG_SIZE` files under `/usr/lib/ironlime-fleet/`, their
 * digests derived from the path, so every run and every node agrees on them. Nodes measure files
 * from this list only, so their IMA logs stay within the runtime policy made from it.
 */
export function knownGoodCatalog(): readonly CatalogFile[] {
  return Array.from({ length: CATALOG_SIZE }, (_, i) => {
    const path = `/usr/lib/ironlime-fleet/pkg${String(i % 32).padStart(2, '0')}/bin${i}`;
    return { path, digest: new Uint8Array(createHash('sha256').update(`ironlime fleet known-good content of ${path}`).digest()) };
  });
}

/**
 * A file outside the policy (path not in `digests`): measuring it is a tampering the verifier reports
 * as `ima.validation.ima-ng.not_in_allowlist`.
 */
export function tamperFile(agentId: string): CatalogFile {
  return { path: `/usr/local/bin/fleet-intruder-${agentId}`, digest: new Uint8Array(randomBytes(32)) };
}

/**
 * The runtime policy an operator would make with `keylime-policy create runtime` from a known-good
 * node: every digest of its measurement list. `bootAggregateLine` is the first line of a freshly
 * booted simulated node's IMA log (all nodes boot the same log, so they share it); the catalog's
 * entries are appended as they would appear after the node ran every file once.
 */
export function fleetRuntimePolicy(bootAggregateLine: string, catalog: readonly CatalogFile[]): RuntimePolicy {
  const lines = [bootAggregateLine.trim(), ...catalog.map((file) => imaNgEntry('sha256', file.digest, file.path).line)];
  return createRuntimePolicy({ imaListText: `${lines.join('\n')}\n` }).policy;
}

/**
 * The measured-boot refstate (Keylime `create_mb_policy`) of the boot log every node replays. The
 * shipped Ubuntu log has Secure Boot off, so the refstate pins the kernel by its plain digest.
 */
export function fleetRefstate(bootLog: Uint8Array): MbRefstate {
  return createRefstate(parseEventLog(bootLog), { withoutSecureBoot: true });
}
