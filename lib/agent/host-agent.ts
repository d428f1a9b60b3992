import { existsSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pino } from 'pino';
import { InvalidParameterValue } from '../../interfaces/errors.js';
import { KeylimeHttpError } from '../http/client-errors.js';
import type { KeylimeService } from '../http/keylime-service.js';
import type { HostId } from '../identity/host-id.js';
import { hostIdHash } from '../identity/host-id.js';
import { HOST_SECRET_FILE, loadOrCreateHostSecret } from '../identity/host-secret-file.js';
import { hostProofKey } from '../identity/host-secret-proof.js';
import type { AgentConfig } from './agent-config.js';
import { ensureDataDir, loadOrCreateAgentServerTls, loadOrCreateAgentUuid, loadTrustedClientCa } from './agent-files.js';
import { agentHostId } from './agent-host-id.js';
import { readConfiguredCaFile } from '../config/read-config-file.js';
import { contactAddress, type StartAgentOptions } from './agent-server.js';
import { createHostAgentService } from './agent-service.js';
import { registerHost } from './host-enrolment.js';

/** Written once the registrar accepted the host secret's proof key: later starts no longer send it. */
export const HOST_SECRET_REGISTERED_FILE = 'host-secret-registered';

/** A running agent without a TPM (`id-secret`, `id-only`). */
export interface RunningHostAgent {
  readonly url: string;
  readonly uuid: string;
  readonly identity: 'id-secret' | 'id-only';
  readonly hostId: HostId;
  readonly agentCertPem: string;
  readonly config: Readonly<AgentConfig>;
  readonly service: KeylimeService;
  close(): Promise<void>;
}

/**
 * Starts an agent that has no TPM (docs/identity.md): reads the host id, for `id-secret` loads or
 * makes the host secret, listens with mTLS serving only `/version` and `/liveness`, then registers.
 * No quote, IMA list or boot log is served: there is no integrity evidence to give.
 */
export async function startHostAgent(config: Readonly<AgentConfig>, options: StartAgentOptions = {}): Promise<RunningHostAgent> {
  const identity = config.identity === 'id-secret' ? 'id-secret' : 'id-only';
  const log = options.logger ?? pino({ level: 'silent' });
  await ensureDataDir(config.dataDir);
  const hostId = agentHostId(config.hostId);
  const uuid = await loadOrCreateAgentUuid(config.dataDir, config.uuid);
  const clientCa = await loadTrustedClientCa(config.dataDir, config.clientCaFile, (message) => log.warn(message));
  const registrarCa = config.registrarCaFile === undefined ? undefined : await readConfiguredCaFile(config.registrarCaFile, 'agent.registrarCaFile');
  const contactIp = config.contactIp ?? contactAddress(config.host);
  const tls = await loadOrCreateAgentServerTls(config.dataDir, uuid, [contactIp]);
  const registeredMarker = path.join(config.dataDir, HOST_SECRET_REGISTERED_FILE);
  // The marker is of the secret beside it: a secret about to be made anew (the old one was lost) is a new
  // key, presented at this start and the next ones until the registrar takes it (it refuses another secret
  // and flags the record until an admin re-registers the host), never a proof it cannot check. Removed
  // before the secret is made, so that no crash between the two leaves a new secret with the old marker.
  if (identity === 'id-secret' && !existsSync(path.join(config.dataDir, HOST_SECRET_FILE))) await rm(registeredMarker, { force: true });
  const secret = identity === 'id-secret' ? loadOrCreateHostSecret(config.dataDir) : undefined;
  const sendsProofKey = secret !== undefined && !existsSync(registeredMarker);
  const proofKey = secret === undefined ? undefined : hostProofKey(secret.secret, hostIdHash(hostId));
  const service = createHostAgentService({ uuid, identityMode: identity, proofKey }, { cert: tls.cert, key: tls.key, clientCa }, log);
  const address = await service.listen({ host: config.host, port: config.port, ...(options.announce === undefined ? {} : { announce: options.announce }) });
  try {
    await registerHost({
      registrarUrl: config.registrarUrl,
      ...(registrarCa === undefined ? {} : { registrarCa }),
      apiVersion: config.registrarApiVersion,
      uuid,
      mode: identity,
      hostId,
      ...(secret === undefined ? {} : { secret: { value: secret.secret, created: sendsProofKey } }),
      contactIp,
      contactPort: address.port,
      serverCertPem: tls.cert,
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    });
    if (secret !== undefined && !existsSync(registeredMarker)) {
      await writeFile(registeredMarker, `${new Date().toISOString()}\n`, { mode: 0o600 });
    }
  } catch (error) {
    await service.close();
    if (secret !== undefined && !sendsProofKey && refusedForProofKey(error)) {
      throw new InvalidParameterValue(
        registeredMarker,
        'says the registrar holds this host\'s proof key, but it asks for it (the agent was deleted there): delete this file so that the next start sends the key again',
        { cause: error },
      );
    }
    throw error;
  }
  log.info({ uuid, url: address.url, identity, hostIdKind: hostId.kind }, 'agent without a TPM registered');
  return { url: address.url, uuid, identity, hostId, agentCertPem: tls.cert, config, service, close: () => service.close() };
}

/** The registrar's refusal of an `id-secret` registration that did not send the proof key it does not hold. */
function refusedForProofKey(error: unknown): boolean {
  return error instanceof KeylimeHttpError && error.remoteHttpStatus === 400 && error.status.includes('host_proof_key');
}
