import { InvalidParameterValue } from '../../interfaces/errors.js';
import { parseEventLog } from '../mb/parse-event-log.js';
import { isExtended } from '../mb/replay.js';
import { TpmAccessError } from './tpm-access-error.js';
import { DIGEST_SIZES, type PcrExtend, type Tpm, type TpmHashAlgorithm } from './tpm-port.js';

export interface BootLogReplayOptions {
  /** PCR banks to extend: those the TPM has active (default sha1 and sha256). Banks the log lacks are skipped. */
  banks?: readonly TpmHashAlgorithm[];
}

export interface BootLogReplayResult {
  /** Banks that were extended (requested and present in the log). */
  banks: TpmHashAlgorithm[];
  /** Events extended per bank (EV_NO_ACTION events are not extended). */
  extendedEvents: number;
  /** PCR indices the log touched, ascending. */
  pcrs: number[];
}

/**
 * Plays firmware and bootloader for an emulated node: extends every measured event of a real UEFI
 * event log (TCG PC Client PFP, parsed by `lib/mb`) into the TPM, bank by bank, in log order, so the
 * TPM ends with the PCR 0–9/14 values the log replays to. Run it right after the TPM starts.
 *
 * Refuses (InvalidParameterValue) a log with a non-zero StartupLocality event: its PCR 0 starts at
 * 00…0<locality>, which TPM2_Startup from locality 0 cannot reproduce. Refuses (TpmAccessError) a TPM
 * whose touched PCRs are not all zero, since the result would match neither the log nor a real boot.
 */
export async function replayBootLog(tpm: Tpm, log: Uint8Array, options: BootLogReplayOptions = {}): Promise<BootLogReplayResult> {
  const parsed = parseEventLog(log);
  if (parsed.startupLocality !== null && parsed.startupLocality !== 0) {
    throw new InvalidParameterValue(
      'eventLog',
      `the log starts at locality ${parsed.startupLocality} (StartupLocality event); a TPM started from locality 0 cannot reproduce its PCR 0`,
    );
  }
  const logBanks = new Set(parsed.algorithms.map((alg) => alg.name));
  const banks = (options.banks ?? ['sha1', 'sha256']).filter((bank) => logBanks.has(bank));
  if (banks.length === 0) {
    throw new InvalidParameterValue('eventLog', `the log has none of the banks ${String(options.banks ?? ['sha1', 'sha256'])}`);
  }
  const events = parsed.events.filter(isExtended);
  const pcrs = [...new Set(events.map((event) => event.pcrIndex))].sort((a, b) => a - b);
  for (const bank of banks) {
    const current = await tpm.readPcrs(bank, pcrs);
    const touched = [...current].filter(([, value]) => value.some((byte) => byte !== 0)).map(([index]) => index);
    if (touched.length > 0) {
      throw new TpmAccessError(`${bank} PCR ${touched.join(', ')} already extended: replay a boot log only into a freshly started TPM`);
    }
  }
  const extendsInOrder: PcrExtend[] = [];
  for (const event of events) {
    for (const bank of banks) {
      const digest = event.digests.find((d) => d.alg.name === bank)?.digest;
      if (digest === undefined || digest.length !== DIGEST_SIZES[bank]) {
        throw new InvalidParameterValue('eventLog', `event ${event.sequence} (PCR ${event.pcrIndex}) has no ${bank} digest`);
      }
      extendsInOrder.push({ index: event.pcrIndex, bank, digest });
    }
  }
  await tpm.extendPcrs(extendsInOrder);
  return { banks, extendedEvents: events.length, pcrs };
}
