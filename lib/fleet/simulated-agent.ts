import type { IncomingMessage } from 'node:http';
import { startAgent, type RunningAgent } from '../agent/agent-server.js';
import { prepareAgentDir, type FleetMaterial } from './fleet-material.js';
import { createFleetTpm, type FleetTpmKeys } from './fleet-tpm.js';
import { bootAggregateLineOf, type FleetNode } from './fleet-node.js';
import { tamperFile } from './fleet-policies.js';

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
  /** EK `ecc` (P-256, ~13 ms per TPM, no EK certificate) or `rsa` (~1 s per TPM, EK certificate from the fleet's EK CA); the AKs' family. */
  readonly tpmKeys: FleetTpmKeys;
  /** The UEFI event log replayed into the TPM at "boot". */
  readonly bootLogPath: string;
}

/** A running simulated node: the real agent plus the hands that run files on it. */
export interface SimulatedAgent extends FleetNode {
  readonly agent: RunningAgent;
  /**
   * When each `quotes/integrity` request arrived (ms since epoch), by its nonce: the start of the
   * verifier's round as the node sees it. Bounded to the newest `KEPT_REQUEST_TIMES`.
   */
  readonly quoteRequests: ReadonlyMap<string, number>;
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
  const tpm = await createFleetTpm(options.material, options.tpmKeys);
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
    bootAggregateLine: () => bootAggregateLineOf(imaLogPath),
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
