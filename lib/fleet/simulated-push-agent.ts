import type { Logger } from 'pino';
import { startPushAgent, type RunningPushAgent } from '../agent/push/push-agent-server.js';
import type { EmulatedNode } from '../agent/node-emulation.js';
import { bootAggregateLineOf, type FleetNode, type FleetNodeSetting } from './fleet-node.js';
import type { FleetMaterial } from './fleet-material.js';
import { createFleetTpm, type FleetTpmKeys } from './fleet-tpm.js';
import { tamperFile } from './fleet-policies.js';

/**
 * Back-off of a simulated push agent: it starts attesting as soon as it is registered, a moment before
 * the fleet enrols it, so its first attempts are refused; Keylime's 10 s first delay would leave a
 * freshly enrolled node silent for that long. The cap stays well under the verifier's liveness timeout.
 */
const FLEET_PUSH_BACKOFF = { initialDelayMs: 500, maxDelayMs: 5_000 };

/**
 * The address node `index` connects from when the verifier is on this host's loopback: its own
 * 127.1.x.y (Linux routes all of 127.0.0.0/8 to `lo`), as real nodes each have their own address.
 * From one address the verifier's per-IP session limit (50 a minute) throttled a fleet of 100 nodes
 * for minutes, and the nodes it held back were failed as silent. Undefined for any other verifier.
 */
function nodeLoopbackAddress(verifierUrl: string, index: number): string | undefined {
  if (new URL(verifierUrl).hostname !== '127.0.0.1' || index > 0xfffe) return undefined;
  const host = index + 1;
  return `127.1.${host >> 8}.${host & 0xff}`;
}

/** A running simulated push node: the real push agent (no port) plus the hands that run files on it. */
export interface SimulatedPushAgent extends FleetNode {
  readonly agent: RunningPushAgent;
  /** Says the node is enrolled: from now on its refused attempts are logged as warnings. */
  enrolled(): void;
}

/**
 * Starts one simulated push node through the real push agent (`startPushAgent`: the same registration,
 * session proof, evidence and IMA emulation as `ironlime agent --push --emulate`) on an in-process
 * software TPM. It opens no port: it attests to the verifier on the interval the verifier returns.
 */
/** A simulated node's registrations while the registrar cannot be reached: a wrong URL fails the fleet's start (about 15 s). */
const FLEET_REGISTRATION_ATTEMPTS = 5;

export async function startSimulatedPushAgent(setting: FleetNodeSetting, material: FleetMaterial, tpmKeys: FleetTpmKeys, logger: Logger): Promise<SimulatedPushAgent> {
  const tpm = await createFleetTpm(material, tpmKeys);
  // Until it is enrolled every node's attempts are refused: logged only at `error`, not 1000 warnings.
  const agentLog = logger.child({ agentId: setting.uuid });
  agentLog.level = 'error';
  const localAddress = nodeLoopbackAddress(setting.verifierUrl, setting.index);
  let agent: RunningPushAgent;
  try {
    agent = await startPushAgent(
      {
        dataDir: setting.agentDir,
        registrarUrl: setting.registrarUrl,
        uuid: setting.uuid,
        tpm: 'software',
        emulate: true,
        bootLog: setting.bootLogPath,
        verifierUrl: setting.verifierUrl,
        verifierCaFile: setting.caFile,
        ...(localAddress === undefined ? {} : { localAddress }),
        backoff: FLEET_PUSH_BACKOFF,
      },
      { tpm, logger: agentLog, registrationAttempts: FLEET_REGISTRATION_ATTEMPTS },
    );
  } catch (error) {
    await tpm.close();
    throw error;
  }
  const emulated = agent.emulated as EmulatedNode;
  return {
    uuid: setting.uuid,
    agent,
    enrolled() {
      agentLog.level = logger.level;
    },
    bootAggregateLine: () => bootAggregateLineOf(agent.imaLogPath),
    async run(file) {
      await emulated.measure([{ path: file.path, fileDigest: file.digest }]);
    },
    async tamper() {
      const intruder = tamperFile(setting.uuid);
      const at = Date.now();
      await emulated.measure([{ path: intruder.path, fileDigest: intruder.digest }]);
      return at;
    },
    async close() {
      await agent.close();
      await tpm.close();
    },
  };
}
