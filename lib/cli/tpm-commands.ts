import { writeFileSync } from 'node:fs';
import { Option } from 'commander';
import { IronlimeError } from '../../interfaces/errors.js';
import { hashInfo } from '../tpm/constants.js';
import { loadCertStore, loadDefaultCertStore } from '../pki/cert-store-files.js';
import type { CertStore } from '../tpm/cert-store.js';
import { verifyEkCertificate } from '../tpm/ek-certificate.js';
import { makeCredential } from '../tpm/make-credential.js';
import { parseQuoteString, type QuoteParts } from '../tpm/quote-string.js';
import { verifyQuote, type QuoteVerdict } from '../tpm/verify-quote.js';
import { signingKeyFrom } from '../tpm/tpm-signature-check.js';
import { publicKeyWeakness } from '../tpm/weak-tpm-key.js';
import type { CommandRegistrar } from './cli-context.js';
import { EXIT_INVALID, EXIT_VALID } from './exit-codes.js';
import { readOptionFile } from './option-file.js';
import { collect } from './option-parsers.js';

function usage(message: string, cause?: unknown): IronlimeError {
  return new IronlimeError('ERR_INVALID_PARAMETER_VALUE', message, cause === undefined ? {} : { cause });
}

/** A file an option names (`readOptionFile`): a missing, unreadable or too large one is a usage error (exit 2). */
async function readFile(path: string, option: string): Promise<Uint8Array> {
  return new Uint8Array(await readOptionFile(path, option));
}

function parseHex(text: string, what: string): Uint8Array {
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(text)) {
    throw usage(`${what} must be an even number of hex digits`);
  }
  return new Uint8Array(Buffer.from(text, 'hex'));
}

/** A PEM public key as text, anything else as TPM2B_PUBLIC / TPMT_PUBLIC bytes. */
async function readAk(path: string): Promise<string | Uint8Array> {
  const bytes = await readFile(path, '--ak');
  const text = Buffer.from(bytes).toString('latin1');
  return text.trimStart().startsWith('-----BEGIN') ? text : bytes;
}

interface VerifyQuoteOptions {
  readonly ak: string;
  readonly nonce?: string;
  readonly nonceHex?: string;
  readonly quote?: string;
  readonly message?: string;
  readonly signature?: string;
  readonly pcrs?: string;
  readonly hashAlg: string;
  readonly signAlg?: string;
  readonly json?: boolean;
}

async function quoteParts(options: VerifyQuoteOptions): Promise<QuoteParts> {
  const separate = [options.message, options.signature, options.pcrs];
  if (options.quote !== undefined) {
    if (separate.some((s) => s !== undefined)) {
      throw usage('give either --quote or --message/--signature/--pcrs, not both');
    }
    return parseQuoteString(Buffer.from(await readFile(options.quote, '--quote')).toString('latin1'));
  }
  const [message, signature, pcrs] = separate;
  if (message === undefined || signature === undefined || pcrs === undefined) {
    throw usage('give --quote FILE, or all of --message FILE --signature FILE --pcrs FILE');
  }
  return { attest: await readFile(message, '--message'), signature: await readFile(signature, '--signature'), pcrBlob: await readFile(pcrs, '--pcrs') };
}

function nonceOf(options: VerifyQuoteOptions): Uint8Array {
  if ((options.nonce === undefined) === (options.nonceHex === undefined)) {
    throw usage('give exactly one of --nonce TEXT or --nonce-hex HEX');
  }
  return options.nonce !== undefined ? new Uint8Array(Buffer.from(options.nonce, 'ascii')) : parseHex(options.nonceHex ?? '', '--nonce-hex');
}

/** `verifyQuote`'s verdict, or the CLI's refusal of a weak AK before it. */
type CliQuoteVerdict = QuoteVerdict | { readonly valid: false; readonly failedCheck: 'weak-key'; readonly reason: string };

function report(verdict: CliQuoteVerdict, hashAlg: string, json: boolean): string {
  if (json) {
    const pcrs = verdict.valid ? Object.fromEntries([...verdict.pcrs].map(([i, v]) => [String(i), Buffer.from(v).toString('hex')])) : {};
    return JSON.stringify({
      valid: verdict.valid,
      reason: verdict.valid ? null : verdict.reason,
      failedCheck: verdict.valid ? null : verdict.failedCheck,
      hashAlg: verdict.valid ? verdict.hashAlg : hashAlg,
      pcrBank: verdict.valid ? verdict.pcrBank : null,
      pcrs,
    });
  }
  if (!verdict.valid) {
    return `INVALID (${verdict.failedCheck}): ${verdict.reason}`;
  }
  const lines = [`valid: ${verdict.hashAlg} signature, ${verdict.pcrBank} bank, ${verdict.pcrs.size} PCR(s)`];
  for (const [index, value] of verdict.pcrs) {
    lines.push(`  pcr ${index}: ${Buffer.from(value).toString('hex')}`);
  }
  return lines.join('\n');
}

interface MakeCredentialOptions {
  readonly ek: string;
  readonly akName: string;
  readonly secret: string;
  readonly out: string;
}

interface VerifyEkCertOptions {
  readonly cert: string;
  readonly store?: string;
  readonly intermediate: string[];
  readonly json?: boolean;
}

function loadStore(dir: string | undefined): CertStore {
  try {
    return dir === undefined ? loadDefaultCertStore() : loadCertStore(dir);
  } catch (error) {
    if (error instanceof IronlimeError) {
      throw error;
    }
    throw usage(`cannot read the CA store ${dir ?? '(default)'}: ${(error as Error).message}`, error);
  }
}

/**
 * `ironlime tpm …`: check a quote (as Keylime's verifier does), make an activation credential (as
 * Keylime's registrar does) and check an EK certificate against a vendor CA store. Checking commands
 * exit 0 valid, 1 invalid, 2 malformed input or usage.
 */
export const registerTpmCommands: CommandRegistrar = (program, context) => {
  const tpm = program.command('tpm').description('TPM 2.0: quotes, activation credentials, EK certificates');

  tpm
    .command('verify-quote')
    .description('verify a TPM2_Quote: signature, nonce, PCR digest')
    .requiredOption('--ak <file>', 'AK public key: PEM, TPM2B_PUBLIC or TPMT_PUBLIC')
    .option('--nonce <text>', 'qualifying data as ASCII text (Keylime pull mode)')
    .option('--nonce-hex <hex>', 'qualifying data as hex bytes')
    .option('--quote <file>', 'Keylime quote string r<attest>:<signature>:<pcrs>')
    .option('--message <file>', 'TPMS_ATTEST (tpm2_quote -m)')
    .option('--signature <file>', 'TPMT_SIGNATURE (tpm2_quote -s)')
    .option('--pcrs <file>', 'PCR values (tpm2_quote -o)')
    .addOption(new Option('--hash-alg <alg>', 'signature hash the quote must use').choices(['sha1', 'sha256', 'sha384', 'sha512', 'sm3_256']).default('sha256'))
    .addOption(new Option('--sign-alg <alg>', 'signature scheme the quote must use').choices(['rsassa', 'rsapss', 'ecdsa']))
    .option('--json', 'print the result as JSON')
    .action(async (options: VerifyQuoteOptions) => {
      const akPublic = signingKeyFrom(await readAk(options.ak));
      const parts = await quoteParts(options);
      const nonce = nonceOf(options);
      // An AK whose private key can be computed signs nothing a verifier may trust (the verifier refuses it too).
      const weakness = publicKeyWeakness(akPublic);
      const verdict: CliQuoteVerdict =
        weakness !== null
          ? { valid: false, failedCheck: 'weak-key', reason: `quote: the AK ${weakness}` }
          : verifyQuote({ akPublic, ...parts, nonce, hashAlg: options.hashAlg, ...(options.signAlg === undefined ? {} : { signAlg: options.signAlg }) });
      process.stdout.write(`${report(verdict, options.hashAlg, options.json === true)}\n`);
      context.setExitCode(verdict.valid ? EXIT_VALID : EXIT_INVALID);
    });

  tpm
    .command('make-credential')
    .description('TPM2_MakeCredential in software; the output is a tpm2-tools credential file')
    .requiredOption('--ek <file>', 'EK public area: TPM2B_PUBLIC or TPMT_PUBLIC')
    .requiredOption('--ak-name <hex>', 'name of the AK the credential is bound to (nameAlg ‖ digest)')
    .requiredOption('--secret <file>', 'the credential, at most the EK name-hash size')
    .requiredOption('--out <file>', 'where to write the credential blob')
    .action(async (options: MakeCredentialOptions) => {
      const akName = parseHex(options.akName, '--ak-name');
      if (akName.length < 2 || hashInfo((akName[0] ?? 0) << 8 | (akName[1] ?? 0))?.digestSize !== akName.length - 2) {
        throw usage('--ak-name must be a TPM name: a hash algorithm id followed by a digest of its size');
      }
      const blob = makeCredential({ ekPublic: await readFile(options.ek, '--ek'), akName, secret: await readFile(options.secret, '--secret') });
      try {
        writeFileSync(options.out, blob);
      } catch (error) {
        throw usage(`cannot write ${options.out}: ${(error as Error).message}`, error);
      }
      context.setExitCode(EXIT_VALID);
    });

  tpm
    .command('verify-ek-cert')
    .description('check that an EK certificate chains to a TPM vendor CA')
    .requiredOption('--cert <file>', 'EK certificate, DER or PEM')
    .option('--store <dir>', 'CA store folder (default: the packaged Keylime vendor store)')
    .option('--intermediate <file>', 'untrusted intermediate CA certificate; repeatable', collect, [])
    .option('--json', 'print the result as JSON')
    .action(async (options: VerifyEkCertOptions) => {
      const store = loadStore(options.store);
      const intermediates: Uint8Array[] = [];
      for (const file of options.intermediate) intermediates.push(await readFile(file, '--intermediate'));
      const verdict = verifyEkCertificate(await readFile(options.cert, '--cert'), store, { intermediates });
      if (options.json === true) {
        process.stdout.write(`${JSON.stringify(verdict)}\n`);
      } else {
        const quirks = verdict.quirks.length > 0 ? ` (quirks: ${verdict.quirks.join(', ')})` : '';
        process.stdout.write(verdict.valid ? `valid: anchored by ${verdict.anchor}${quirks}\n` : `INVALID: ${verdict.reason}${quirks}\n`);
      }
      context.setExitCode(verdict.valid ? EXIT_VALID : EXIT_INVALID);
    });
};
