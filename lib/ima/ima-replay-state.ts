import { IronlimeError } from '../../interfaces/errors.js';
import { pcrBankSize, PCR_BANKS, type PcrBank } from './hash-algorithms.js';
import type { ImaKeyringJson } from './ima-keyring.js';

/**
 * PCR 10 in the banks a replay kept, lowercase hex: the quoted bank after a round checked against a
 * quote (only that bank is replayed, as Keylime does), sha1 and sha256 in the initial state (a round
 * from entry 0 starts any quoted bank at zeros) and the state's banks after a round without a quote.
 */
export type Pcr10Values = Partial<Record<PcrBank, string>>;

/**
 * What one round of IMA checking hands to the next (Keylime `AgentAttestState`: `next_ima_ml_entry`,
 * the PCR state, `learned_ima_keyrings`), as plain JSON so it can be stored per agent.
 */
export interface ImaReplayState {
  /** 0-based index of the next entry to ask the node for: every entry before it is verified. */
  nextEntry: number;
  /** PCR 10 after entries `[0, nextEntry)`, in the banks replayed (at least one). */
  pcr10: Pcr10Values;
  /** Keys learnt from `ima-buf` keyring entries: keyring name → Keylime keyring JSON. */
  learnedKeyrings: Record<string, ImaKeyringJson>;
  /**
   * Entries the last round validated after the point where the quote matched (the log was ahead of
   * the quoted PCR). The next quote must cover at least that many of them ("quote progress").
   */
  lagEntries: number;
}

/** The state before the first round, and after any failure: replay from entry 0 and zeros. */
export function initialImaReplayState(): ImaReplayState {
  return { nextEntry: 0, pcr10: { sha1: zeros('sha1'), sha256: zeros('sha256') }, learnedKeyrings: {}, lagEntries: 0 };
}

/** A PCR bank's value after reset, as hex. */
function zeros(bank: PcrBank): string {
  return '00'.repeat(pcrBankSize(bank));
}

function invalid(detail: string): never {
  throw new IronlimeError('ERR_INVALID_PARAMETER_VALUE', `IMA replay state: ${detail}`);
}

function count(value: unknown, field: string): number {
  if (!Number.isSafeInteger(value) || (value as number) < 0) {
    invalid(`${field} must be a non-negative integer`);
  }
  return value as number;
}

/** The banks of a stored `pcr10`: each present bank checked, at least one. */
function pcrValues(banks: Record<string, unknown>): Pcr10Values {
  const values: Pcr10Values = {};
  for (const bank of PCR_BANKS) {
    const value = banks[bank];
    if (value === undefined) {
      continue;
    }
    const length = pcrBankSize(bank) * 2;
    if (typeof value !== 'string' || value.length !== length || !/^[0-9a-f]*$/.test(value)) {
      invalid(`pcr10.${bank} must be ${length} lowercase hex digits`);
    }
    values[bank] = value;
  }
  if (Object.keys(values).length === 0) {
    invalid(`pcr10 must hold at least one of ${PCR_BANKS.join(', ')}`);
  }
  return values;
}

/**
 * Checks a state read back from storage (it crosses a process and a database, so its shape is
 * checked before use). Learnt keys are only checked for shape here; loading them checks the keys.
 *
 * @throws IronlimeError (ERR_INVALID_PARAMETER_VALUE) naming the bad field.
 */
export function parseImaReplayState(value: unknown): ImaReplayState {
  if (typeof value !== 'object' || value === null) {
    invalid('must be an object');
  }
  const v = value as Record<string, unknown>;
  const pcr10 = v['pcr10'];
  if (typeof pcr10 !== 'object' || pcr10 === null) {
    invalid('pcr10 must be {sha1?, sha256?, sha384?, sha512?}');
  }
  const banks = pcr10 as Record<string, unknown>;
  const learned = v['learnedKeyrings'] ?? {};
  if (typeof learned !== 'object' || learned === null || Array.isArray(learned)) {
    invalid('learnedKeyrings must be an object');
  }
  for (const [name, ring] of Object.entries(learned)) {
    const r = ring as Partial<ImaKeyringJson> | null;
    if (r === null || !Array.isArray(r.pubkeys) || !Array.isArray(r.keyids)) {
      invalid(`learnedKeyrings[${JSON.stringify(name)}] must be {pubkeys, keyids}`);
    }
    if (r.digests !== undefined && (!Array.isArray(r.digests) || !r.digests.every((d) => typeof d === 'string'))) {
      invalid(`learnedKeyrings[${JSON.stringify(name)}].digests must be a list of hex digests`);
    }
  }
  return {
    nextEntry: count(v['nextEntry'], 'nextEntry'),
    pcr10: pcrValues(banks),
    learnedKeyrings: learned as Record<string, ImaKeyringJson>,
    lagEntries: count(v['lagEntries'] ?? 0, 'lagEntries'),
  };
}
