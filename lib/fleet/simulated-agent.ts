import { readFile } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { startAgent, type RunningAgent } from '../agent/agent-server.js';
import { createSoftwareTpm } from '../tpm-access/software/tpm-adapter.js';
import type { EkAlgorithm } from '../tpm-access/tpm-port.js';
import { prepareAgentDir, type FleetMaterial } from './fleet-material.js';
import { tamperFile, type CatalogFile } from './fleet-policies.js';

export interface SimulatedAgentOptions {
  readonly uuid: string;
  /** The agent's own data dir (recreated). */
  readonly agentDir: string;
  readonly material: FleetMaterial;
  readonly registrarUrl: string;
  /** PEM file of the CA whose client certificates (the verifier's, the tenant's) may call the agent. */
  readonly clientCaFile: string;
  /** HTTPS port, 0 for any free one. */
  readonly port: number;
  /** `ecc` (P-256, ~13 ms per TPM, no EK certificate) or `rsa` (~1 s per TPM, EK certificate from the fleet's EK CA). */
  readonly ekAlgorithm: EkAlgorithm;
  /** The UEFI event log replayed into the TPM at "boot". */
  readonly bootLogPath: string;
}

/** A running simulated node: the real agent plus the hands that run files on it. */
export interface SimulatedAgent {
  readonly uuid: string;
  readonly agent: RunningAgent;
  /** The first line of its IMA log (boot_aggregate), the same on every node booting the same log. */
  bootAggregateLine(): Promise<string>;
  /** Runs a known-good file: one ima-ng entry, PCR 10 extended. */
  run(file: CatalogFile): Promise<void>;
  /** Runs a file outside the policy; resolves to the time (ms since epoch) just before its entry was logged. */
  tamper(): Promise<number>;
  /**
   * When each `quotes/integrity` request arrived (ms since epoch), by its nonce: the start of the
   * verifier's round as the node sees it. Bounded to the newest `KEPT_REQUEST_TIMES`.
   */
  readonly quoteRequests: ReadonlyMap<string, number>;
  close(): Promise<void>;
}

/** Integrity-request times kept per agent, enough for minutes of rounds. */
const KEPT_REQUEST_TIMES = 4096;

/**
 * Starts one simulated node through the real agent (`startAgent`: the same routes, quoter, IMA
 * emulation, registration and credential activation as `ironlime agent --emulate`) on an in-process
 * software TPM. Its data dir links to the fleet's shared NK and server certificate; everything else
 * (uuid, EK, AK, PCRs, IMA log) is its own.
 */
export async function startSimulatedAgent(options: SimulatedAgentOptions): Promise<SimulatedAgent> {
  await prepareAgentDir(options.material, options.agentDir);
  const ekCa = options.material.ekCa;
  const tpm = await createSoftwareTpm({
    ekAlgorithm: options.ekAlgorithm,
    // node-forge (behind the software EK CA) has no EC keys: ECC software EKs come without a certificate.
    ...(options.ekAlgorithm === 'rsa' ? { issueEkCertificate: (key) => ekCa.issue(key) } : {}),
  });
  let agent: RunningAgent;
  try {
    agent = await startAgent(
      {
        dataDir: options.agentDir,
        registrarUrl: options.registrarUrl,
        uuid: options.uuid,
        port: options.port,
        tpm: 'software',
        emulate: true,
        bootLog: options.bootLogPath,
        clientCaFile: options.clientCaFile,
      },
      { tpm },
    );
  } catch (error) {
    await tpm.close();
    throw error;
  }
  const quoteRequests = new Map<string, number>();
  // A second 'request' listener beside fastify's: it only notes when the verifier asked for a quote.
  agent.service.app.server.on('request', (request: IncomingMessage) => {
    const url = request.url ?? '';
    if (!url.includes('/quotes/integrity')) {
      return;
    }
    const nonce = new URL(url, 'https://agent').searchParams.get('nonce');
    if (nonce !== null) {
      quoteRequests.set(nonce, Date.now());
      if (quoteRequests.size > KEPT_REQUEST_TIMES) {
        quoteRequests.delete(quoteRequests.keys().next().value as string);
      }
    }
  });
  const imaLogPath = agent.imaLogPath as string;
  return {
    uuid: options.uuid,
    agent,
    quoteRequests,
    async bootAggregateLine() {
      const text = await readFile(imaLogPath, 'utf8');
      return text.slice(0, text.indexOf('\n'));
    },
    async run(file) {
      await agent.appendIma(file.path, file.digest);
    },
    async tamper() {
      const intruder = tamperFile(options.uuid);
      const at = Date.now();
      await agent.appendIma(intruder.path, intruder.digest);
      return at;
    },
    async close() {
      await agent.close();
      await tpm.close();
    },
  };
}
