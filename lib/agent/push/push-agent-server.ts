import { pino, type Logger } from 'pino';
import { InvalidConfig, MissingParameterValue } from '../../../interfaces/errors.js';
import type { Tpm } from '../../tpm-access/tpm-port.js';
import { buildAgentConfig, type AgentConfig, type AgentConfigInput } from '../agent-config.js';
import { registerAndActivate } from '../agent-enrolment.js';
import { prepareAgentNode } from '../agent-node.js';
import { readConfiguredCaFile } from '../../config/read-config-file.js';
import { ensureDataDir, loadOrCreateAgentUuid } from '../agent-files.js';
import { fileAgentLogs } from '../agent-logs.js';
import type { EmulatedNode } from '../node-emulation.js';
import { hostBootTime } from './host-boot-time.js';
import { backoffWaitMs } from './failure-wait.js';
import { PUSH_BACKOFF_DEFAULTS, PushAgent, type PushBackoff } from './push-agent.js';
import { pushVerifierOrigin } from './verifier-origin.js';

export interface PushAgentInput extends AgentConfigInput {
  /** `https://HOST:PORT` of the verifier (plain `http://` to a loopback address only). */
  readonly verifierUrl: string;
  /** PEM file of the CA the verifier's certificate chains to. */
  readonly verifierCaFile?: string;
  /** The local address to connect to the verifier from (default: the system's choice). */
  readonly localAddress?: string;
  readonly backoff?: Partial<PushBackoff>;
}

export interface StartPushAgentOptions {
  readonly logger?: Logger;
  /** An open TPM instead of `config.tpm` (tests, fleets); not closed by the agent. */
  readonly tpm?: Tpm;
  /**
   * Stops the start (SIGTERM/SIGINT while the registrar is away): the start rejects with an AbortError
   * once what it opened is released.
   */
  readonly signal?: AbortSignal;
  /**
   * Registrations tried while the registrar cannot be reached (default: until `signal` aborts, as
   * Keylime's push agent does). A fleet simulator passes a number, so a wrong registrar URL fails its
   * start rather than waiting for ever.
   */
  readonly registrationAttempts?: number;
}

/** A registered push agent attesting in the background. */
export interface RunningPushAgent {
  readonly uuid: string;
  readonly config: Readonly<AgentConfig>;
  readonly imaLogPath: string;
  readonly bootLogPath: string;
  readonly agent: PushAgent;
  /** Emulated nodes: "runs" a file (IMA entry + PCR 10). */
  readonly emulated: EmulatedNode | undefined;
  /** Stops attesting (the request in flight is finished or aborted), then releases the TPM. */
  close(): Promise<void>;
}

/**
 * Starts a push-model agent (`ironlime agent --push`): the same TPM, data folder and registration as
 * the pull agent, but `mtls_cert: "disabled"`, no address and no listening port; then attests to
 * the verifier on its own (`PushAgent.run`) until closed. An unreachable registrar is tried again
 * with the push back-off (Keylime's RegistrationFailed → wait → Unregistered, spec §10.1) until it
 * answers or `options.signal` stops the start.
 */
export async function startPushAgent(input: PushAgentInput, options: StartPushAgentOptions = {}): Promise<RunningPushAgent> {
  const { verifierUrl, verifierCaFile, localAddress, backoff, ...agentInput } = input;
  const retry = { ...PUSH_BACKOFF_DEFAULTS, ...backoff };
  if (verifierUrl === '') throw new MissingParameterValue(['--verifier'], 'ironlime agent --push');
  const verifierOrigin = pushVerifierOrigin(verifierUrl);
  const config = buildAgentConfig(agentInput);
  if (config.identity === 'id-secret' || config.identity === 'id-only') {
    // A push session is proved with the TPM (Keylime §10.2); a node without one is checked by the
    // verifier's liveness polls instead (docs/identity.md).
    throw new InvalidConfig('agent.identity', `${config.identity} has no TPM to prove a push session with: run it without --push`);
  }
  const log = options.logger ?? pino({ level: 'silent' });
  await ensureDataDir(config.dataDir);
  const uuid = await loadOrCreateAgentUuid(config.dataDir, config.uuid);
  const registrarCa = config.registrarCaFile === undefined ? undefined : await readConfiguredCaFile(config.registrarCaFile, 'agent.registrarCaFile');
  const verifierCa = verifierCaFile === undefined ? undefined : await readConfiguredCaFile(verifierCaFile, 'agent.verifierCaFile');
  const cleanups: (() => Promise<void>)[] = [];
  const closeAll = async (): Promise<void> => {
    for (const cleanup of cleanups.splice(0).reverse()) {
      await cleanup().catch((error: unknown) => log.warn({ err: error }, 'push agent shutdown step failed'));
    }
  };
  try {
    const node = await prepareAgentNode(config, options.tpm, cleanups, log);
    const { tpm, ak, emulated, imaLogPath, bootLogPath } = node;
    await registerAndActivate({
      registrarUrl: config.registrarUrl,
      ...(registrarCa === undefined ? {} : { registrarCa }),
      apiVersion: config.registrarApiVersion,
      uuid,
      tpm,
      ek: node.ek,
      ak,
      serverCertPem: 'disabled',
      identity: node.identity,
      hostId: node.hostId,
      attempts: options.registrationAttempts ?? Infinity,
      backoff: { initialDelayMs: retry.initialDelayMs, maxDelayMs: retry.maxDelayMs, maxDoublings: retry.maxRetries },
      // As the attestation loop's: spread (a fleet booting while its registrar is away) and never below 1 s.
      drawWaitMs: (computedMs) => backoffWaitMs(computedMs),
      ...(options.signal === undefined ? {} : { signal: options.signal }),
      onRetry: (error, attempt, waitMs) => log.warn({ err: error, attempt, waitMs }, 'registrar unreachable; registering again after the wait'),
    });
    const agent = new PushAgent({
      uuid,
      verifierUrl: verifierOrigin,
      ...(verifierCa === undefined ? {} : { caCert: verifierCa }),
      ...(localAddress === undefined ? {} : { localAddress }),
      tpm,
      ak,
      // An emulated node on an in-process TPM serves its logs from memory (`bootEmulatedNode`), as the pull agent does.
      logs: emulated?.logs ?? fileAgentLogs(imaLogPath, bootLogPath),
      bootTime: emulated === undefined ? await hostBootTime(config.dataDir, {}, log) : new Date(),
      ...(backoff === undefined ? {} : { backoff }),
      log,
    });
    const stop = new AbortController();
    const running = agent.run(stop.signal);
    cleanups.push(async () => {
      stop.abort();
      await running;
    });
    log.info({ uuid, verifier: verifierUrl, tpm: tpm.kind }, 'push agent registered; attesting');
    return { uuid, config, imaLogPath, bootLogPath, agent, emulated, close: closeAll };
  } catch (error) {
    await closeAll();
    throw error;
  }
}
