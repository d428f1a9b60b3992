import 'reflect-metadata';
import { readConfiguredCaFile } from '../config/read-config-file.js';
import { pino, type Logger } from 'pino';
import { container as rootContainer, type DependencyContainer } from 'tsyringe';
import { InvalidConfig, InvalidParameterValue } from '../../interfaces/errors.js';
import type { KeylimeService } from '../http/keylime-service.js';
import type { ImaNgEntry } from '../tpm-access/ima-ng-template.js';
import { DIGEST_SIZES, type Tpm } from '../tpm-access/tpm-port.js';
import { buildAgentConfig, type AgentConfig, type AgentConfigInput } from './agent-config.js';
import { registerAndActivate } from './agent-enrolment.js';
import { prepareAgentNode } from './agent-node.js';
import {
  ensureDataDir,
  loadOrCreateAgentServerTls,
  loadOrCreateAgentUuid,
  loadOrCreateNodeKey,
  loadTrustedClientCa,
} from './agent-files.js';
import { fileAgentLogs } from './agent-logs.js';
import { AgentQuoter } from './agent-quoter.js';
import { revocationReceiver } from './agent-revocation.js';
import type { AgentApiContext } from './agent-routes.js';
import { createAgentService } from './agent-service.js';
import { AGENT_API_CONTEXT, AGENT_CONFIG, AGENT_LOGGER } from './agent-tokens.js';
import { BootstrapKeys, type BootstrapSecret } from './bootstrap-keys.js';


export interface StartAgentOptions {
  /** Default: silent. The CLI passes a pino logger on stderr. */
  readonly logger?: Logger;
  /** Receives the "agent listening on <url>" line. */
  readonly announce?: (line: string) => void;
  /**
   * An open TPM to use instead of opening `config.tpm` (tests, fleet simulations). The agent does not
   * close it. With `emulate` it must be freshly started.
   */
  readonly tpm?: Tpm;
  /** The container to derive the agent's child container from (default tsyringe's root). */
  readonly parent?: DependencyContainer;
  /** Stops the start during registration: it rejects with an AbortError once what it opened is released. */
  readonly signal?: AbortSignal;
}

/** A running, registered and activated agent. */
export interface RunningAgent {
  /** `https://<host>:<port>`. */
  readonly url: string;
  readonly uuid: string;
  /** PEM of the self-signed server certificate (the registrar's `mtls_cert`). */
  readonly agentCertPem: string;
  /** PEM of the NK public key (`pubkey`). */
  readonly nkPublicPem: string;
  /** Folder of the CA certificates behind the EK certificate, when the agent made its TPM (`swtpm`, `software`). */
  readonly ekCaDir: string | undefined;
  readonly imaLogPath: string | undefined;
  readonly bootLogPath: string | undefined;
  readonly config: Readonly<AgentConfig>;
  /** The agent's HTTPS service (for `inject` in tests). */
  readonly service: KeylimeService;
  readonly container: DependencyContainer;
  /** K and the decrypted payload once the tenant's U and the verifier's V matched. */
  bootstrapSecret(): BootstrapSecret | undefined;
  /**
   * Emulated nodes only: "runs" a file — appends its ima-ng entry (file digest: SHA-256, 64 hex
   * digits or 32 bytes) and extends PCR 10 as the kernel would.
   */
  appendIma(filePath: string, digest: string | Uint8Array): Promise<ImaNgEntry>;
  /** Stops serving, then releases the TPM (stopping the agent's own swtpm). */
  close(): Promise<void>;
}

/**
 * Starts a node agent (zero-config: creates in `dataDir` what it lacks — uuid, NK, server
 * certificate, trusted client CA, its swtpm): opens the TPM and ensures EK and AK; for an emulated
 * node replays the boot log and starts the IMA log; listens with mTLS; then registers with the
 * registrar and activates. Anything started before a failure is stopped again.
 */
export async function startAgent(input: AgentConfigInput, options: StartAgentOptions = {}): Promise<RunningAgent> {
  const config = buildAgentConfig(input);
  if (config.identity === 'id-secret' || config.identity === 'id-only') {
    throw new InvalidConfig('agent.identity', `${config.identity} has no TPM: start it with startHostAgent`);
  }
  const log = options.logger ?? pino({ level: 'silent' });
  await ensureDataDir(config.dataDir);
  const uuid = await loadOrCreateAgentUuid(config.dataDir, config.uuid);
  const nk = await loadOrCreateNodeKey(config.dataDir);
  const clientCa = await loadTrustedClientCa(config.dataDir, config.clientCaFile, (message) => log.warn(message));
  const registrarCa = config.registrarCaFile === undefined ? undefined : await readConfiguredCaFile(config.registrarCaFile, 'agent.registrarCaFile');
  const contactIp = config.contactIp ?? contactAddress(config.host);
  const tls = await loadOrCreateAgentServerTls(config.dataDir, uuid, [contactIp]);

  const cleanups: (() => Promise<void>)[] = [];
  const closeAll = async (): Promise<void> => {
    for (const cleanup of cleanups.splice(0).reverse()) {
      await cleanup().catch((error: unknown) => log.warn({ err: error }, 'agent shutdown step failed'));
    }
  };
  try {
    const node = await prepareAgentNode(config, options.tpm, cleanups, log);
    const { tpm, ek, ak, emulated } = node;
    const keys = new BootstrapKeys(nk.privateKey, uuid);
    const context: AgentApiContext = {
      uuid,
      hashAlg: config.hashAlg,
      ekAlgorithm: ek.ekAlgorithm,
      ak,
      nkPublicPem: nk.publicPem,
      quoter: new AgentQuoter(tpm, config.hashAlg, nk.publicPem),
      keys,
      logs: emulated?.logs ?? fileAgentLogs(node.imaLogPath, node.bootLogPath),
      ...(config.revocationCertFile === undefined ? {} : { revocation: revocationReceiver(config.revocationCertFile, config.revocationActions ?? [], log) }),
    };
    const container = (options.parent ?? rootContainer).createChildContainer();
    container.register(AGENT_CONFIG, { useValue: config });
    container.register(AGENT_LOGGER, { useValue: log });
    container.register(AGENT_API_CONTEXT, { useValue: context });
    // Only a caller's logger: a silent one would still cost fastify a child logger per request.
    const service = createAgentService(context, { cert: tls.cert, key: tls.key, clientCa }, options.logger);
    const address = await service.listen({ host: config.host, port: config.port, ...(options.announce === undefined ? {} : { announce: options.announce }) });
    cleanups.push(() => service.close());
    await registerAndActivate({
      registrarUrl: config.registrarUrl,
      ...(registrarCa === undefined ? {} : { registrarCa }),
      apiVersion: config.registrarApiVersion,
      uuid,
      tpm,
      identity: node.identity,
      hostId: node.hostId,
      ek,
      ak,
      contactIp,
      contactPort: address.port,
      serverCertPem: tls.cert,
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    });
    log.info({ uuid, url: address.url, tpm: tpm.kind, emulated: config.emulate }, 'agent registered and activated');
    return {
      url: address.url,
      uuid,
      agentCertPem: tls.cert,
      nkPublicPem: nk.publicPem,
      ekCaDir: node.ekCaDir,
      imaLogPath: node.imaLogPath,
      bootLogPath: node.bootLogPath,
      config,
      service,
      container,
      bootstrapSecret: () => keys.current,
      appendIma: async (filePath, digest) => {
        if (emulated === undefined) {
          throw new InvalidParameterValue('appendIma', 'only an emulated agent (emulate: true) has an IMA log to append to');
        }
        const [entry] = await emulated.measure([{ path: filePath, fileDigest: fileDigestBytes(digest) }]);
        return entry as ImaNgEntry;
      },
      close: closeAll,
    };
  } catch (error) {
    await closeAll();
    throw error;
  }
}

/** A SHA-256 file digest from 64 hex digits or 32 bytes. @throws InvalidParameterValue */
export function fileDigestBytes(digest: string | Uint8Array): Uint8Array {
  const bytes = typeof digest === 'string' ? (/^[0-9a-fA-F]*$/.test(digest) ? Buffer.from(digest, 'hex') : undefined) : digest;
  if (bytes === undefined || bytes.length !== DIGEST_SIZES.sha256) {
    throw new InvalidParameterValue('digest', `must be a SHA-256 digest (${DIGEST_SIZES.sha256 * 2} hex digits)`);
  }
  return new Uint8Array(bytes);
}

/** Address to announce for a listening host: a wildcard listens everywhere, so loopback is a safe default. */
export function contactAddress(host: string): string {
  return host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
}
