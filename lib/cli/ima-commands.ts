import { Option } from 'commander';
import { IronlimeError } from '../../interfaces/errors.js';
import { parseImaAsciiList } from '../ima/ascii-list-parser.js';
import { parseImaBinaryList } from '../ima/binary-list-parser.js';
import { compileRuntimePolicy } from '../ima/compiled-policy.js';
import { loadPolicyVerificationKey } from '../ima/dsse-envelope.js';
import { imaHashByName, type PcrBank } from '../ima/hash-algorithms.js';
import { ImaKeyring, readPublicKeyBlob } from '../ima/ima-keyring.js';
import type { Pcr10Values } from '../ima/ima-replay-state.js';
import { loadRuntimePolicy } from '../ima/policy-loader.js';
import { emptyRuntimePolicy } from '../ima/runtime-policy.js';
import { parseExcludeList } from '../ima/exclude-matcher.js';
import { verifyImaList } from '../ima/verify-ima-list.js';
import type { CommandRegistrar } from './cli-context.js';
import { EXIT_INVALID, EXIT_VALID } from './exit-codes.js';
import { readOptionFile } from './option-file.js';
import { collect } from './option-parsers.js';

interface VerifyOptions {
  readonly log: string;
  readonly format: 'auto' | 'ascii' | 'binary';
  readonly policy?: string;
  readonly policyKey?: string;
  readonly excludelist?: string;
  readonly pcr10?: string;
  readonly bank: PcrBank;
  readonly imaKey: string[];
  readonly json?: boolean;
}

/**
 * `ironlime ima verify`: checks a whole IMA measurement list (ASCII or binary) — template hashes,
 * PCR 10 replay (in both banks, or only the quoted value's bank with `--pcr10`, compared with it) and
 * optionally a runtime policy (JSON, DSSE-signed JSON or flat allowlist, plus a legacy exclude list).
 * Exit 0 valid, 1 invalid, 2 malformed input or usage.
 */
export const registerImaCommands: CommandRegistrar = (program, context) => {
  const ima = program.command('ima').description('IMA runtime integrity: measurement lists and runtime policies');
  ima
    .command('verify')
    .description('check an IMA measurement list: template hashes, PCR 10 replay, runtime policy')
    .requiredOption('--log <file>', 'measurement list (ascii_runtime_measurements or binary_runtime_measurements)')
    .addOption(new Option('--format <format>', 'list format').choices(['auto', 'ascii', 'binary']).default('auto'))
    .option('--policy <file>', 'runtime policy: Keylime JSON, DSSE-signed JSON, or a flat allowlist')
    .option('--policy-key <file>', 'PEM public key or certificate a signed policy must verify with')
    .option('--excludelist <file>', 'legacy exclude list (one Python regex per line) added to the policy')
    .option('--pcr10 <hex>', 'PCR 10 value the list must replay to (any prefix of the list may match)')
    .addOption(new Option('--bank <bank>', 'PCR bank of --pcr10').choices(['sha1', 'sha256', 'sha384', 'sha512']).default('sha1'))
    .option('--ima-key <file>', 'IMA signature verification key (PEM/DER key or certificate); repeatable', collect, [])
    .option('--json', 'print the result as JSON')
    .action(async (options: VerifyOptions) => {
      const result = await runVerify(options);
      if (options.json === true) {
        process.stdout.write(`${JSON.stringify(result)}\n`);
      } else {
        const summary = result.valid ? 'valid' : `INVALID (${result.failures.length} failure(s))`;
        const matched =
          result.matched === result.entries ? '' : `; the quoted PCR 10 matched after entry ${result.matched} (the rest is ahead of the quote)`;
        const lines = [
          `${summary}: ${result.entries} entries; PCR 10 ${Object.entries(result.pcr10).map(([bank, value]) => `${bank} ${value}`).join(', ')}${matched}`,
          ...result.failures.map((f) => `  line ${f.line}: ${f.eventId}${f.path === '' ? '' : ` ${f.path}`}: ${f.message}`),
        ];
        process.stdout.write(`${lines.join('\n')}\n`);
      }
      context.setExitCode(result.valid ? EXIT_VALID : EXIT_INVALID);
    });
};

interface VerifyReport {
  valid: boolean;
  entries: number;
  /** Entries up to the quoted PCR 10 match (all of them without --pcr10). */
  matched: number;
  /** PCR 10 after every entry: in the --bank of --pcr10 only (the bank replayed), both banks without --pcr10. */
  pcr10: Pcr10Values;
  failures: Array<{ line: number; path: string; eventId: string; message: string }>;
}

/** A binary list starts with a little-endian u32 PCR index (small); an ASCII one with digits. */
function looksBinary(bytes: Buffer): boolean {
  return bytes.length >= 4 && bytes.readUInt32LE(0) < 32;
}

async function runVerify(options: VerifyOptions): Promise<VerifyReport> {
  const bytes = await readOptionFile(options.log, '--log');
  const binary = options.format === 'binary' || (options.format === 'auto' && looksBinary(bytes));
  const excludeListText = options.excludelist === undefined ? undefined : (await readOptionFile(options.excludelist, '--excludelist')).toString('utf8');
  let policy;
  if (options.policy !== undefined) {
    const signingKey =
      options.policyKey === undefined ? undefined : loadPolicyVerificationKey((await readOptionFile(options.policyKey, '--policy-key')).toString('utf8'));
    policy = loadRuntimePolicy((await readOptionFile(options.policy, '--policy')).toString('utf8'), {
      ...(signingKey === undefined ? {} : { signingKey }),
      ...(excludeListText === undefined ? {} : { excludeListText }),
    }).policy;
  } else if (excludeListText !== undefined || options.imaKey.length > 0) {
    // Signature keys without a policy are judged against Keylime's empty policy, as the verifier does.
    policy = { ...emptyRuntimePolicy(), excludes: excludeListText === undefined ? [] : parseExcludeList(excludeListText) };
  }
  const compiled = policy === undefined ? undefined : compileRuntimePolicy(policy);
  const entries = binary
    ? parseImaBinaryList(bytes, { templateHashSize: imaHashByName(compiled?.logHashAlg ?? 'sha1')?.digestSize ?? 20 })
    : parseImaAsciiList(bytes.toString('utf8'));
  let keyrings: ImaKeyring | undefined;
  for (const file of options.imaKey) {
    const key = readPublicKeyBlob(await readOptionFile(file, '--ima-key'));
    if (key === undefined) {
      throw new IronlimeError('ERR_INVALID_PARAMETER_VALUE', `--ima-key ${file}: not a public key, private key or certificate`);
    }
    keyrings ??= new ImaKeyring();
    keyrings.add(key.key, key.keyId);
  }
  if (options.pcr10 !== undefined && !/^[0-9a-fA-F]+$/.test(options.pcr10)) {
    throw new IronlimeError('ERR_INVALID_PARAMETER_VALUE', `--pcr10 must be hex, got "${options.pcr10}"`);
  }
  const result = verifyImaList({
    entries,
    startEntry: 0,
    ...(compiled === undefined ? {} : { policy: compiled }),
    ...(keyrings === undefined ? {} : { keyrings }),
    ...(options.pcr10 === undefined ? {} : { quotedPcr10: { bank: options.bank, value: options.pcr10.toLowerCase() } }),
  });
  return {
    valid: result.valid,
    entries: result.entriesChecked,
    matched: result.matchedEntries,
    pcr10: result.pcr10,
    failures: result.failures.map((f) => ({ line: f.line, path: f.path, eventId: f.eventId, message: f.context.message })),
  };
}
