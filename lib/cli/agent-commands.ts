import { existsSync } from 'node:fs';
import path from 'node:path';
import { Option, type Command } from 'commander';
import { destination, pino } from 'pino';
import { InvalidParameterValue, IronlimeError, MissingParameterValue } from '../../interfaces/errors.js';
import { AGENT_HASH_ALGS, buildAgentConfig, type AgentConfigInput } from '../agent/agent-config.js';
import { startHostAgent } from '../agent/host-agent.js';
import { IDENTITY_MODES } from '../identity/trust-level.js';
import { initAgent } from '../agent/agent-init.js';
import { fileDigestBytes, startAgent } from '../agent/agent-server.js';
import { appendImaFromCli } from '../agent/node-emulation.js';
import { startPushAgent } from '../agent/push/push-agent-server.js';
import { ServiceUnreachableError } from '../http/client-errors.js';
import { runUntilSignal } from '../http/service-lifecycle.js';
import { startUntilSignal } from './start-until-signal.js';
import type { CommandRegistrar } from './cli-context.js';
import { EXIT_VALID } from './exit-codes.js';
import { readOptionFile } from './option-file.js';

interface AgentOptions {
  readonly dataDir?: string;
  readonly registrar?: string;
  readonly registrarCa?: string;
  readonly uuid?: string;
  readonly host?: string;
  readonly port?: string;
  readonly contactIp?: string;
  readonly tpm?: string;
  readonly swtpm?: boolean;
  readonly swtpmCaDir?: string;
  readonly emulate?: boolean;
  readonly imaLog?: string;
  readonly bootLog?: string;
  readonly revocationCert?: string;
  readonly revocationAction?: string[];
  readonly clientCa?: string;
  readonly hashAlg?: string;
  readonly push?: boolean;
  readonly verifier?: string;
  readonly verifierCa?: string;
  readonly identity?: string;
  readonly hostId?: string;
}

interface ImaAppendOptions {
  readonly dataDir?: string;
  readonly path: string;
  readonly content?: string;
  readonly digest?: string;
}

/**
 * `ironlime agent`: runs a Keylime pull agent (with `--push`, a push agent) until SIGTERM/SIGINT; `ironlime agent ima-append`
 * "runs" a file on an emulated node (one IMA entry, PCR 10 extended as the kernel would).
 */
export const registerAgentCommands: CommandRegistrar = (program, context) => {
  const agent = program
    .command('agent')
    .description('run a node agent: register with the registrar, then serve the Keylime agent API over mTLS')
    .option('--data-dir <dir>', 'agent data folder (uuid, NK, certificates, its swtpm, emulated logs); required')
    .option('--registrar <url>', 'registrar registration URL (default http://127.0.0.1:8890)')
    .option('--registrar-ca <file>', 'PEM CA of an https:// registrar URL')
    .option('--uuid <id>', 'agent id (default: the stored one, else a new UUID)')
    .option('--host <host>', 'address to listen on (default 127.0.0.1)')
    .option('--port <port>', 'HTTPS port (default 9002)')
    .option('--contact-ip <ip>', 'address the verifier and tenant reach the agent at (default: --host)')
    .option('--tpm <spec>', 'swtpm | software | swtpm:host=H,port=P | device:/dev/tpmrm0 (default: swtpm with --emulate, else device:/dev/tpmrm0)')
    .option('--swtpm', 'start an own swtpm in the data folder (same as --tpm swtpm)')
    .option('--swtpm-ca-dir <dir>', "folder of the own swtpm's local EK CA (default <data-dir>/swtpm/localca); share it between emulated nodes")
    .option('--emulate', 'emulated node: replay a UEFI log into the fresh TPM and keep an emulated IMA log')
    .option('--ima-log <file>', 'ASCII IMA list to serve (default the kernel\'s)')
    .option('--boot-log <file>', 'binary UEFI event log to serve, or with --emulate to replay (default the kernel\'s / the shipped fixture)')
    .option('--client-ca <file>', 'PEM CA whose client certificates may call the agent (default <data-dir>/ca/cacert.crt)')
    .option('--revocation-cert <file>', 'revocation certificate or public key (PEM): accept signed revocation notifications')
    .option('--revocation-action <file>', 'executable run with each authentic revocation message on stdin (repeatable)', (file: string, all: string[]) => [...all, file], [] as string[])
    .addOption(new Option('--hash-alg <alg>', 'quote hash and PCR bank').choices(AGENT_HASH_ALGS))
    .option('--push', 'push model (API 3.0): open no port, attest to --verifier on its own (docs/push.md)')
    .option('--verifier <url>', 'with --push: the verifier, https://HOST:PORT')
    .option('--verifier-ca <file>', 'with --push: PEM CA of the verifier (default <data-dir>/ca/cacert.crt when present)')
    .addOption(new Option('--identity <mode>', 'how to register (docs/identity.md; default tpm)').choices(IDENTITY_MODES))
    .option('--host-id <id>', 'sys-uuid | mac (read here) | sys-uuid:<uuid> | mac:<address> (default for id-secret/id-only: the SMBIOS UUID, else the MAC)')
    .action(async (options: AgentOptions) => {
      if (options.push === true) {
        await runPushAgent(options);
        context.setExitCode(EXIT_VALID);
        return;
      }
      const input = agentInput(options);
      if (input.identity === 'id-secret' || input.identity === 'id-only') {
        const host = await startUntilSignal((signal) =>
          startHostAgent(buildAgentConfig(input), {
            logger: pino({ level: 'info' }, destination(2)),
            announce: (line) => process.stdout.write(`${line}\n`),
            signal,
          }),
        );
        if (host === undefined) {
          context.setExitCode(EXIT_VALID);
          return;
        }
        process.stdout.write(`agent ${host.uuid} registered as ${host.identity} (host id ${host.hostId.kind}); no TPM: liveness only, no integrity evidence\n`);
        await runUntilSignal([host]);
        context.setExitCode(EXIT_VALID);
        return;
      }
      const running = await startUntilSignal((signal) =>
        startAgent(input, {
          logger: pino({ level: 'info' }, destination(2)),
          announce: (line) => process.stdout.write(`${line}\n`),
          signal,
        }),
      ).catch((error: unknown) => {
        throw registrarNeverAnswered(error);
      });
      if (running === undefined) {
        context.setExitCode(EXIT_VALID);
        return;
      }
      process.stdout.write(`agent ${running.uuid} registered and activated\n`);
      if (running.ekCaDir !== undefined) {
        process.stdout.write(`EK CA certificates of this TPM: ${running.ekCaDir}\n`);
      }
      if (running.config.emulate) {
        process.stdout.write(`emulated IMA log: ${String(running.imaLogPath)}\n`);
      }
      await runUntilSignal([running]);
      context.setExitCode(EXIT_VALID);
    });

  agent
    .command('init')
    .description('prepare a node without registering: uuid, NK, certificate, its swtpm; prints the EK CA folder for the registrar')
    .option('--data-dir <dir>', 'agent data folder; required')
    .option('--tpm <spec>', 'as for `ironlime agent`')
    .option('--swtpm', 'start an own swtpm in the data folder')
    .option('--swtpm-ca-dir <dir>', "folder of the own swtpm's local EK CA")
    .option('--uuid <id>', 'agent id (default: the stored one, else a new UUID)')
    .action(async (_options: AgentOptions, command: Command) => {
      // `agent` owns the same options, which commander fills even when they follow `init`.
      const initialized = await initAgent(agentInput(command.optsWithGlobals<AgentOptions>()));
      process.stdout.write(`agent ${initialized.uuid} initialized\n`);
      process.stdout.write(`EK certificate: ${initialized.ekCertificate === null ? 'none' : 'present'}\n`);
      if (initialized.ekCaDir !== undefined) {
        process.stdout.write(`EK CA certificates of this TPM: ${initialized.ekCaDir}\n`);
      }
      context.setExitCode(EXIT_VALID);
    });

  agent
    .command('ima-append')
    .description('emulated node: measure a file into the IMA log of the agent running from --data-dir and extend PCR 10')
    .option('--data-dir <dir>', 'data folder of the running emulated agent; required')
    .requiredOption('--path <path>', 'file path recorded in the IMA entry, e.g. /usr/bin/evil')
    .option('--content <file>', 'file whose SHA-256 is measured')
    .option('--digest <hex>', 'SHA-256 file digest to record instead (64 hex digits)')
    .action(async (_options: ImaAppendOptions, command: Command) => {
      // `agent` has a --data-dir of its own, which commander fills even when it follows `ima-append`.
      const options = command.optsWithGlobals<ImaAppendOptions>();
      if (options.dataDir === undefined) {
        throw new MissingParameterValue(['--data-dir'], 'ironlime agent ima-append');
      }
      if ((options.content === undefined) === (options.digest === undefined)) {
        throw new InvalidParameterValue('--content/--digest', 'give exactly one of them');
      }
      const measurement =
        options.content === undefined
          ? { path: options.path, fileDigest: fileDigestBytes(options.digest ?? '') }
          : { path: options.path, content: new Uint8Array(await readOptionFile(options.content, '--content')) };
      const entry = await appendImaFromCli(options.dataDir, measurement);
      process.stdout.write(`${entry.line}\n`);
      context.setExitCode(EXIT_VALID);
    });
};

/** `ironlime agent --push`: registers, then attests until SIGTERM/SIGINT stops it cleanly. */
async function runPushAgent(options: AgentOptions): Promise<void> {
  const verifierUrl = options.verifier;
  if (verifierUrl === undefined) {
    throw new MissingParameterValue(['--verifier'], 'ironlime agent --push');
  }
  const input = agentInput(options);
  const defaultCa = path.join(input.dataDir, 'ca', 'cacert.crt');
  const verifierCaFile = options.verifierCa ?? (existsSync(defaultCa) ? defaultCa : undefined);
  const running = await startUntilSignal((signal) =>
    startPushAgent(
      { ...input, verifierUrl, ...(verifierCaFile === undefined ? {} : { verifierCaFile }) },
      { logger: pino({ level: 'info' }, destination(2)), signal },
    ),
  );
  if (running === undefined) return;
  process.stdout.write(`push agent ${running.uuid} registered; attesting to ${options.verifier}\n`);
  if (running.emulated !== undefined) {
    process.stdout.write(`emulated IMA log: ${running.imaLogPath}\n`);
  }
  await runUntilSignal([running]);
}

function agentInput(options: AgentOptions): AgentConfigInput {
  if (options.dataDir === undefined) {
    throw new MissingParameterValue(['--data-dir'], 'ironlime agent');
  }
  const tpm = options.tpm ?? (options.swtpm === true || options.emulate === true || options.identity === 'emulated-tpm' ? 'swtpm' : 'device:/dev/tpmrm0');
  if (options.swtpm === true && options.tpm !== undefined && options.tpm !== 'swtpm') {
    throw new InvalidParameterValue('--swtpm', `conflicts with --tpm ${options.tpm}`);
  }
  return {
    dataDir: options.dataDir,
    tpm,
    emulate: options.emulate === true,
    ...(options.registrar === undefined ? {} : { registrarUrl: options.registrar }),
    ...(options.swtpmCaDir === undefined ? {} : { swtpmCaDir: options.swtpmCaDir }),
    ...(options.registrarCa === undefined ? {} : { registrarCaFile: options.registrarCa }),
    ...(options.uuid === undefined ? {} : { uuid: options.uuid }),
    ...(options.host === undefined ? {} : { host: options.host }),
    ...(options.port === undefined ? {} : { port: portNumber(options.port) }),
    ...(options.contactIp === undefined ? {} : { contactIp: options.contactIp }),
    ...(options.imaLog === undefined ? {} : { imaLog: options.imaLog }),
    ...(options.bootLog === undefined ? {} : { bootLog: options.bootLog }),
    ...(options.clientCa === undefined ? {} : { clientCaFile: options.clientCa }),
    ...(options.revocationCert === undefined ? {} : { revocationCertFile: options.revocationCert }),
    ...(options.revocationAction === undefined || options.revocationAction.length === 0 ? {} : { revocationActions: options.revocationAction }),
    ...(options.hashAlg === undefined ? {} : { hashAlg: options.hashAlg as AgentConfigInput['hashAlg'] }),
    ...(options.identity === undefined ? {} : { identity: options.identity as AgentConfigInput['identity'] }),
    ...(options.hostId === undefined ? {} : { hostId: options.hostId }),
  };
}

function portNumber(text: string): number {
  if (!/^[0-9]{1,5}$/.test(text) || Number(text) > 65535) {
    throw new InvalidParameterValue('--port', 'must be an integer from 0 to 65535');
  }
  return Number(text);
}

/**
 * A pull agent's start reaches no service but the registrar, which it tried several times: an
 * unreachable one is said to be the registrar, with what to check (the bare error named only a URL).
 * A failed TLS handshake is left as it is: it names its own cause.
 */
function registrarNeverAnswered(error: unknown): unknown {
  if (!(error instanceof ServiceUnreachableError) || error.reason === 'tls') {
    return error;
  }
  return new IronlimeError(
    'ERR_SERVICE_UNREACHABLE',
    `the registrar did not answer, after 5 tries: ${error.message}; start it, or point --registrar at its registration port`,
    { cause: error },
  );
}
