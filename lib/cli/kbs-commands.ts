import { InvalidArgumentError, Option } from 'commander';
import { InvalidParameterValue } from '../../interfaces/errors.js';
import { MAX_PEM_FILE_BYTES } from '../files/regular-file.js';
import { KbsClientBuilder } from '../kbs-client/kbs-client-builder.js';
import { TEE_KEY_KINDS, type TeeKeyKind } from '../kbs-client/tee-key-pair.js';
import type { KbsMode } from '../kbs-client/kbs-client.js';
import type { ServiceUnreachableError } from '../http/client-errors.js';
import { tlsFailureKind } from '../http/keylime-transport-errors.js';
import { KbsRefusedError } from '../kbs-client/kbs-client-errors.js';
import { DEFAULT_QUOTED_PCRS, TpmEvidenceProvider } from '../kbs-client/tpm-evidence-provider.js';
import { PRIVATE_KEY_MODE, writeFileAtomic } from '../pki/pem-files.js';
import { tlsFileProblem } from '../pki/tls-file-contents.js';
import { openTpm2ToolsTpm } from '../tpm-access/tpm2-tools/tpm-adapter.js';
import type { Tpm } from '../tpm-access/tpm-port.js';
import type { CommandRegistrar } from './cli-context.js';
import { EXIT_INVALID, EXIT_USAGE, EXIT_VALID } from './exit-codes.js';
import { readOptionFile } from './option-file.js';

interface GetResourceOptions {
  readonly url: string;
  readonly ca?: string;
  readonly mode: KbsMode;
  readonly issuerUrl?: string;
  readonly issuerCa?: string;
  readonly agentId: string;
  readonly tcti: string;
  readonly imaLog?: string;
  readonly bootLog?: string;
  readonly pcrs: readonly number[];
  readonly teeKey: TeeKeyKind;
  readonly output?: string;
}

/**
 * `ironlime kbs get-resource kbs:///<repository>/<type>/<tag>` on a node: attests with the node's TPM
 * (tpm2-tools TCTI: `/dev/tpmrm0` or swtpm), in background-check or passport mode, and writes the
 * secret to `--output` (mode 0600) or stdout. Exit 0 with the secret, 1 when a broker refused (a 4xx
 * answer: its judgement of this node or request), 2 on usage errors or when a broker or the TPM cannot be
 * reached or gives no judgement (a 5xx, a redirect, which is not followed).
 */
export const registerKbsCommands: CommandRegistrar = (program, context) => {
  const kbs = program.command('kbs').description('KBS client: fetch secrets released only to attested nodes');
  kbs
    .command('get-resource <uri>')
    .description('attest this node and fetch kbs:///<repository>/<type>/<tag>')
    .requiredOption('--url <url>', 'the broker holding the resource (https://host:8080)')
    .option('--ca <file>', "PEM CA of the broker's certificate")
    .addOption(new Option('--mode <mode>', 'background (attest to the broker) or passport (token from --issuer-url)').choices(['background', 'passport']).default('background'))
    .option('--issuer-url <url>', 'passport mode only: the broker that issues tokens (default --url)')
    .option('--issuer-ca <file>', "with --issuer-url: PEM CA of the issuer's certificate (default --ca)")
    .requiredOption('--agent-id <id>', 'the agent id the broker knows this node by')
    .option('--tcti <tcti>', 'TPM (tpm2-tools TCTI)', 'device:/dev/tpmrm0')
    .option('--ima-log <file>', 'IMA list to send', undefined)
    .option('--boot-log <file>', 'UEFI event log to send', undefined)
    .option('--pcrs <list>', `PCRs to quote (default ${DEFAULT_QUOTED_PCRS.join(',')})`, pcrList, DEFAULT_QUOTED_PCRS)
    .addOption(new Option('--tee-key <kind>', 'ephemeral key the resource is wrapped to').choices([...TEE_KEY_KINDS]).default('ec'))
    .option('--output <file>', 'write the secret here (mode 0600) instead of stdout')
    .action(async (uri: string, options: GetResourceOptions) => {
      refuseIgnoredIssuerOptions(options);
      // Read before the TPM is opened, so a refused file leaves no TPM work folder behind.
      const ca = await readCaOption(options.ca, '--ca');
      const issuerCa = await readCaOption(options.issuerCa, '--issuer-ca');
      const tpm = await openTpm2ToolsTpm({ tcti: options.tcti });
      try {
        await getResource(uri, options, tpm, { ca, issuerCa }, context.setExitCode);
      } finally {
        await tpm.close();
      }
    });
};

async function getResource(
  uri: string,
  options: GetResourceOptions,
  tpm: Tpm,
  pems: { readonly ca: string | undefined; readonly issuerCa: string | undefined },
  setExitCode: (code: number) => void,
): Promise<void> {
  const builder = new KbsClientBuilder(options.url)
    .mode(options.mode)
    .teeKey(options.teeKey)
    .evidenceProvider(
      new TpmEvidenceProvider({
        tpm,
        agentId: options.agentId,
        pcrs: options.pcrs,
        ...(options.imaLog === undefined ? {} : { imaLogPath: options.imaLog }),
        ...(options.bootLog === undefined ? {} : { bootLogPath: options.bootLog }),
      }),
    );
  if (pems.ca !== undefined) {
    builder.ca(pems.ca);
  }
  if (options.issuerUrl !== undefined) {
    builder.issuer(options.issuerUrl, pems.issuerCa);
  }
  const built = builder.build();
  try {
    const secret = await built.client.getResource(uri);
    if (options.output === undefined) {
      process.stdout.write(secret);
    } else {
      // A fresh file replaces the path (never written through a planted symlink, never keeping an existing file's mode).
      await writeFileAtomic(options.output, secret, PRIVATE_KEY_MODE);
    }
    setExitCode(EXIT_VALID);
  } catch (error) {
    if (!(error instanceof KbsRefusedError)) {
      throw brokerCaHint(error, options, pems) ?? error;
    }
    // The URL and status too: a proxy's 502 or a redirect carries no KBS type or detail.
    if (isJudgement(error.remoteHttpStatus)) {
      process.stderr.write(`ironlime: kbs: refused: ${error.message}\n`);
      setExitCode(EXIT_INVALID);
    } else {
      process.stderr.write(`ironlime: kbs: no answer from the broker: ${error.message}\n`);
      setExitCode(EXIT_USAGE);
    }
  } finally {
    await built.close();
  }
}

/**
 * A broker (or issuer) certificate that does not verify with the CA given, or with the system roots when
 * none was, as one line naming the CA option to give, as the tenant names its `--ca`; else undefined.
 */
function brokerCaHint(error: unknown, options: GetResourceOptions, pems: { readonly ca: string | undefined; readonly issuerCa: string | undefined }): InvalidParameterValue | undefined {
  if (tlsFailureKind(error) !== 'server-certificate') return undefined;
  const url = (error as ServiceUnreachableError).url;
  const issuer = options.issuerUrl !== undefined && url.startsWith(options.issuerUrl.replace(/\/$/, '')) && pems.issuerCa !== undefined;
  const option = issuer ? '--issuer-ca' : '--ca';
  const against = (issuer ? pems.issuerCa : pems.ca) === undefined ? 'the system roots (no --ca given)' : `the CA of ${option}`;
  return new InvalidParameterValue(option, `the broker's certificate does not verify with ${against}: give the broker's CA, its <data-dir>/ca/cacert.crt (${(error as Error).message})`, { cause: error });
}

/**
 * A 4xx is the broker's judgement (`PolicyDeny`, `AttestationError`, an unknown resource): exit 1. A 5xx
 * (`VerifierUnavailable`, a proxy's 502) or a redirect judges nothing, as an unreachable broker: exit 2,
 * so a script does not take a broker that is down for a node it does not trust.
 */
function isJudgement(status: number): boolean {
  return status >= 400 && status < 500;
}

/**
 * The issuer options are used only together and only in passport mode: `--issuer-ca` alone left the
 * issuer (the broker) checked against `--ca`, `--issuer-url` in background mode was never asked; either
 * silently ignored. @throws InvalidParameterValue naming the option
 */
function refuseIgnoredIssuerOptions(options: GetResourceOptions): void {
  if (options.issuerCa !== undefined && options.issuerUrl === undefined) {
    throw new InvalidParameterValue('--issuer-ca', 'needs --issuer-url (without it the issuer is --url, checked against --ca)');
  }
  if (options.issuerUrl !== undefined && options.mode !== 'passport') {
    throw new InvalidParameterValue('--issuer-url', 'works with --mode passport only');
  }
}

/**
 * A CA option's PEM text: a regular file of at most `MAX_PEM_FILE_BYTES` (a FIFO held the command for
 * ever) holding a certificate. One holding none (a key, an empty file) was skipped by the TLS context
 * for the system roots, so the broker's own certificate failed as "self-signed certificate in
 * certificate chain". @throws InvalidParameterValue naming the option
 */
async function readCaOption(file: string | undefined, option: string): Promise<string | undefined> {
  if (file === undefined) return undefined;
  const pem = (await readOptionFile(file, option, { maxBytes: MAX_PEM_FILE_BYTES, pipes: false })).toString('utf8');
  const problem = tlsFileProblem({ ca: pem });
  if (problem !== undefined) throw new InvalidParameterValue(option, `${file} ${problem.detail}`);
  return pem;
}

function pcrList(text: string): number[] {
  if (!/^\d{1,2}(,\d{1,2})*$/.test(text)) {
    throw new InvalidArgumentError('must be a comma-separated list of PCR numbers');
  }
  const pcrs = text.split(',').map(Number);
  if (pcrs.some((pcr) => pcr > 23)) {
    throw new InvalidArgumentError('PCR numbers are 0-23');
  }
  return pcrs;
}
