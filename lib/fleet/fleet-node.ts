import { readFile } from 'node:fs/promises';
import type { CatalogFile } from './fleet-policies.js';

/** What the fleet needs from a simulated node, pull or push. */
export interface FleetNode {
  readonly uuid: string;
  /** The first line of its IMA log (boot_aggregate), the same on every node booting the same log. */
  bootAggregateLine(): Promise<string>;
  /** Runs a known-good file: one ima-ng entry, PCR 10 extended. */
  run(file: CatalogFile): Promise<void>;
  /** Runs a file outside the policy; resolves to the time (ms since epoch) just before its entry was logged. */
  tamper(): Promise<number>;
  close(): Promise<void>;
}

/** Where and against what a node of the fleet is started. */
export interface FleetNodeSetting {
  readonly uuid: string;
  /** The node's own data dir. */
  readonly agentDir: string;
  /** Its position in the fleet (0 for the first). */
  readonly index: number;
  readonly registrarUrl: string;
  readonly verifierUrl: string;
  /** PEM file of the services' CA: it issued the verifier's certificate and the clients' certificates. */
  readonly caFile: string;
  /** The UEFI event log replayed into the TPM at "boot". */
  readonly bootLogPath: string;
}

/** The first line of an IMA log file (its boot_aggregate entry). */
export async function bootAggregateLineOf(imaLogPath: string): Promise<string> {
  const text = await readFile(imaLogPath, 'utf8');
  return text.slice(0, text.indexOf('\n'));
}
