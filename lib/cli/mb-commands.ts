import { writeFileSync } from 'node:fs';
import { IronlimeError } from '../../interfaces/errors.js';
import { untrustedBootEvents } from '../mb/boot-events.js';
import { secureBootState } from '../mb/boot-state.js';
import { createRefstate } from '../mb/create-refstate.js';
import type { ParsedEventLog } from '../mb/event-log.js';
import { parseEventLogInput } from '../mb/event-log-input.js';
import { checkMeasuredBootLog } from '../mb/check-measured-boot.js';
import type { MbPolicyEvaluation } from '../mb/evaluate-mb-policy.js';
import type { MbFailure } from '../mb/mb-failure.js';
import { MbRefstateError } from '../mb/mb-refstate.js';
import { parseMbRefstate } from '../mb/parse-refstate.js';
import { pcrBanksToJson, replayEventLog } from '../mb/replay.js';
import type { QuotedPcrs, ReplayVerification } from '../mb/verify-replay.js';
import type { CommandRegistrar } from './cli-context.js';
import { EXIT_INVALID, EXIT_VALID } from './exit-codes.js';
import { readOptionFile } from './option-file.js';

interface ReplayOptions {
  readonly log: string;
  readonly json?: boolean;
}

interface VerifyOptions {
  readonly log: string;
  readonly refstate: string;
  readonly pcrs?: string;
  readonly json?: boolean;
}

interface RefstateOptions {
  readonly log: string;
  readonly out?: string;
  readonly withoutSecureboot?: boolean;
}

/**
 * `ironlime mb replay | verify | refstate`: UEFI measured boot from the command line. Logs are raw
 * binary (`binary_bios_measurements`) or base64 text (Keylime's `mb_measurement_list`).
 * Exit 0 valid / done, 1 invalid (a PCR or the refstate does not match; no refstate can be made
 * from the log), 2 malformed input or usage.
 */
export const registerMbCommands: CommandRegistrar = (program, context) => {
  const mb = program.command('mb').description('UEFI measured boot: event logs, PCR replay, boot policy (refstate)');
  mb.command('replay')
    .description('parse an event log and print the PCR values it replays to, in every bank')
    .requiredOption('--log <file>', 'event log: binary_bios_measurements, or base64 text')
    .option('--json', 'print JSON: {"events", "pcrs": {bank: {index: hex}}, "secureBoot"}')
    .action(async (options: ReplayOptions) => {
      const log = await readLog(options.log);
      const replay = replayEventLog(log);
      const first = log.algorithms[0];
      const secureBoot = first === undefined ? null : secureBootState(untrustedBootEvents(log, first)).enabled;
      const pcrs = pcrBanksToJson(replay.banks);
      if (options.json === true) {
        write(JSON.stringify({ events: log.events.length, pcrs, secureBoot }));
      } else {
        const lines = [`${log.format} event log, ${log.events.length} events; Secure Boot ${onOff(secureBoot)}`];
        for (const [bank, values] of Object.entries(pcrs)) {
          lines.push(...Object.entries(values).map(([index, hex]) => `${bank} PCR ${index.padStart(2)}: ${hex}`));
        }
        lines.push(...replay.unreplayable.map((u) => `${u.bank}: not replayed (${u.reason})`));
        write(lines.join('\n'));
      }
      context.setExitCode(EXIT_VALID);
    });
  mb.command('verify')
    .description('check an event log against quoted PCR values (optional) and a Keylime "example" refstate')
    .requiredOption('--log <file>', 'event log: binary_bios_measurements, or base64 text')
    .requiredOption('--refstate <file>', 'measured-boot reference state (Keylime example policy JSON)')
    .option('--pcrs <file>', 'quoted PCR values as JSON {"sha256": {"0": "hex", …}}, checked against the replay first')
    .option('--json', 'print JSON: {"passed", "replay", "failures"}')
    .action(async (options: VerifyOptions) => {
      const log = await readLog(options.log);
      const refstate = parseMbRefstate((await readOptionFile(options.refstate, '--refstate')).toString('utf8'));
      const quoted = options.pcrs === undefined ? ownReplay(log) : await readPcrs(options.pcrs);
      const { passed, replay, evaluation, failures } = checkMeasuredBootLog(log, quoted, refstate);
      if (options.json === true) {
        write(JSON.stringify({ passed, replay: replay === null ? null : replaySummary(replay, options.pcrs !== undefined), failures }));
      } else {
        write(verifyText(passed, replay, options.pcrs !== undefined, evaluation, failures));
      }
      context.setExitCode(passed ? EXIT_VALID : EXIT_INVALID);
    });
  mb.command('refstate')
    .description('create a Keylime "example" refstate from a known-good event log')
    .requiredOption('--log <file>', 'event log of a known-good machine: binary_bios_measurements, or base64 text')
    .option('-i, --without-secureboot', 'allow a log with Secure Boot disabled (pins vmlinuz by its plain digest)')
    .option('--out <file>', 'write the refstate here instead of standard output')
    .action(async (options: RefstateOptions) => {
      const log = await readLog(options.log);
      let refstate;
      try {
        refstate = createRefstate(log, { withoutSecureBoot: options.withoutSecureboot === true });
      } catch (error) {
        if (!(error instanceof MbRefstateError)) {
          throw error;
        }
        process.stderr.write(`ironlime: ${error.message}\n`);
        context.setExitCode(EXIT_INVALID);
        return;
      }
      const text = `${JSON.stringify(refstate, null, 2)}\n`;
      if (options.out === undefined) {
        process.stdout.write(text);
      } else {
        writeFileSync(options.out, text);
        // As `policy create --out`: the file is named on stderr, so a script's stdout stays clean.
        process.stderr.write(`wrote ${options.out}: Secure Boot ${refstate.has_secureboot ? 'on' : 'off'}, ${refstate.kernels.length} kernel(s)\n`);
      }
      context.setExitCode(EXIT_VALID);
    });
};

async function readLog(path: string): Promise<ParsedEventLog> {
  return parseEventLogInput(new Uint8Array(await readOptionFile(path, '--log')));
}

/** Without `--pcrs`, the log is only checked against itself: its sha256 replay stands in for a quote. */
function ownReplay(log: ParsedEventLog): QuotedPcrs {
  const pcrs = pcrBanksToJson(replayEventLog(log).banks);
  const bank = pcrs.sha256 ?? {};
  const quoted: Record<string, string> = { ...bank };
  for (let pcr = 0; pcr <= 15; pcr++) {
    quoted[String(pcr)] ??= pcr === 0 && log.startupLocality !== null ? `${'00'.repeat(31)}0${log.startupLocality}` : '00'.repeat(32);
  }
  return { sha256: quoted };
}

async function readPcrs(path: string): Promise<QuotedPcrs> {
  const text = (await readOptionFile(path, '--pcrs')).toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new IronlimeError('ERR_INVALID_PARAMETER_VALUE', `--pcrs: not valid JSON (${(error as Error).message})`);
  }
  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!isObject(value) || !Object.values(value).every((bank) => isObject(bank) && Object.values(bank).every((d) => typeof d === 'string'))) {
    throw new IronlimeError('ERR_INVALID_PARAMETER_VALUE', '--pcrs: expected {"<bank>": {"<index>": "<hex>"}}');
  }
  return value as QuotedPcrs;
}

function replaySummary(replay: ReplayVerification, quoted: boolean) {
  return {
    quoted,
    matched: replay.matched.length,
    mismatched: replay.mismatched,
    unverifiable: replay.unverifiable,
    quirksApplied: replay.quirksApplied,
  };
}

function verifyText(
  passed: boolean,
  replay: ReplayVerification | null,
  quoted: boolean,
  evaluation: MbPolicyEvaluation | null,
  failures: readonly MbFailure[],
): string {
  const lines = [passed ? 'PASS' : 'FAIL'];
  lines.push(
    quoted
      ? `replay: ${replay?.matched.length ?? 0} quoted PCR(s) match, ${replay?.mismatched.length ?? 0} differ`
      : 'replay: no --pcrs given, so the log is checked against itself only (its digests are not verified)',
  );
  if (replay !== null && replay.quirksApplied.length > 0) {
    lines.push(`quirks applied: ${replay.quirksApplied.join(', ')}`);
  }
  if (evaluation !== null) {
    lines.push(`policy example over PCRs ${evaluation.pcrs.join(',')}: ${evaluation.passed ? 'pass' : 'fail'}`);
  }
  for (const failure of failures) {
    const context = failure.context;
    const actual = context.actual ?? context.got;
    const detail = 'expected' in context ? ` (expected ${brief(context.expected)}, actual ${brief(actual)})` : '';
    lines.push(`${failure.eventId}: ${String(context.context)}${detail}`);
  }
  return lines.join('\n');
}

/** JSON of a value, cut to 160 characters: certificates and dbx lists are long (--json has them whole). */
function brief(value: unknown): string {
  const text = JSON.stringify(value) ?? 'null';
  return text.length > 160 ? `${text.slice(0, 157)}...` : text;
}

function onOff(value: boolean | null): string {
  return value === null ? 'unknown' : value ? 'enabled' : 'disabled';
}

function write(text: string): void {
  process.stdout.write(`${text}\n`);
}
