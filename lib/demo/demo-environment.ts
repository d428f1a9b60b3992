import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pino, type Logger } from 'pino';
import { InvalidParameterValue } from '../../interfaces/errors.js';
import { buildAgentConfig } from '../agent/agent-config.js';
import { fileDigestBytes, startAgent, type RunningAgent } from '../agent/agent-server.js';
import { startPushAgent, type RunningPushAgent } from '../agent/push/push-agent-server.js';
import { startHostAgent, type RunningHostAgent } from '../agent/host-agent.js';
import { createDatabase, type Database } from '../db/database-factory.js';
import { createRuntimePolicy } from '../ima/create-runtime-policy.js';
import { createRefstate } from '../mb/create-refstate.js';
import { parseEventLog } from '../mb/parse-event-log.js';
import { CA_CERT_FILE, issuedCertificatePaths } from '../pki/ca-directory.js';
import { caDirOf, loadOrCreateClientTls } from '../pki/service-tls.js';
import { startRegistrar, type RunningRegistrar } from '../registrar/registrar-server.js';
import { startVerifier, type RunningVerifier } from '../verifier/verifier-server.js';
import { knownGoodFiles, type DemoFile } from './demo-catalog.js';
import { startNodeTpms, type NodeTpmKind, type NodeTpms } from './node-tpms.js';
import type { Tpm } from '../tpm-access/tpm-port.js';
import { settleAll } from './settle-all.js';

export interface DemoEnvironmentOptions {
  /** A fresh folder; everything (CA, PGlite, TPM state, node data, policies) goes under it. The caller removes it. */
  readonly dir: string;
  readonly tpmKind: NodeTpmKind;
  readonly nodeCount: number;
  /** The verifier's `quote_interval` in seconds. */
  readonly quoteIntervalSeconds: number;
  /** Every node runs one more known-good file this often (0: the IMA lists grow only when asked). */
  readonly imaGrowthMs: number;
  /** Push-model nodes (issue 13) started beside the pull nodes: they register, then attest to the verifier themselves. */
  readonly pushNodeCount?: number;
  /** Nodes without a TPM to add (`id-secret`, each with its own made-up MAC as host id). */
  readonly hostNodeCount?: number;
  readonly logger?: Logger;
}

/** One emulated node running a push agent (no port: it attests to the verifier on its own). */
export interface DemoPushNode {
  readonly name: string;
  readonly agent: RunningPushAgent;
  run(file: DemoFile): Promise<void>;
}

/** One emulated bare-metal node: its agent (with a real UEFI boot log and an IMA list) and its name. */
export interface DemoNode {
  readonly name: string;
  readonly agent: RunningAgent;
  /** The node's TPM (the agent's), for the node's own requests such as fetching its disk key from the broker. */
  readonly tpm: Tpm;
  /** Port the agent listens on (what the ramdisk reports). */
  readonly port: number;
  /** "Runs" a file: one ima-ng entry in its IMA list, PCR 10 extended. */
  run(file: DemoFile): Promise<void>;
}

/** A node without a TPM (docs/identity.md): host id + secret, checked for liveness only. */
export interface DemoHostNode {
  readonly name: string;
  readonly agent: RunningHostAgent;
  readonly port: number;
}

/** A policy document written to disk, with the sha256 the driver checks it against. */
export interface PolicyFile {
  readonly path: string;
  readonly sha256: string;
}

/** The policies made from the known-good node. */
export interface GoldenPolicies {
  /** Keylime JSON runtime policy (`keylime-policy create runtime` from the node's IMA list). */
  readonly runtimePolicy: PolicyFile;
  /** The same digests as a flat allowlist (`<sha256> <path>` lines), the Ironic spec's format. */
  readonly allowlist: PolicyFile;
  /** Measured-boot refstate (`create_mb_policy` from the node's UEFI boot log). */
  readonly refstate: PolicyFile;
}

/** Running services and nodes; `close()` stops everything that was started, in reverse order. */
export interface DemoEnvironment {
  readonly tpmKind: NodeTpmKind;
  readonly database: Database;
  readonly registrar: RunningRegistrar;
  readonly verifier: RunningVerifier;
  /** PEM files a client of the services uses: their CA and a client certificate from it (agents trust it too). */
  readonly tls: { readonly caFile: string; readonly certFile: string; readonly keyFile: string };
  /** The CA certificates behind the nodes' EK certificates (trusted by the registrar and the driver). */
  readonly ekCaDir: string;
  readonly nodes: readonly DemoNode[];
  readonly pushNodes: readonly DemoPushNode[];
  /** Nodes without a TPM (`id-secret`), after the TPM nodes in the table. */
  readonly hostNodes: readonly DemoHostNode[];
  readonly policies: GoldenPolicies;
  /** Process ids of the swtpm processes still running. */
  swtpmPids(): number[];
  close(): Promise<void>;
}

/**
 * Brings up the whole attestation side of the demo in this process, on the embedded PGlite database
 * and a fresh CA: node TPMs, a registrar (EK certificates required, trusted through the nodes' EK CA),
 * a verifier, and one emulated node per TPM — each replays the shipped UEFI boot log into its TPM,
 * starts its IMA list and registers. Every node then runs the known-good files once; the runtime
 * policy, a flat allowlist and the boot refstate are made from the first node. `close()` stops in
 * reverse order: IMA growth, verifier, agents, registrar, database, TPMs. With `imaGrowthMs`,
 * every node keeps running known-good files. Anything started before a failure is stopped again.
 */
export async function startDemoEnvironment(options: DemoEnvironmentOptions): Promise<DemoEnvironment> {
  const log = options.logger ?? pino({ level: 'silent' });
  const closers: (() => Promise<void>)[] = [];
  const close = async (): Promise<void> => {
    for (const closer of closers.splice(0).reverse()) {
      await closer().catch((error: unknown) => log.warn({ err: error }, 'demo shutdown step failed'));
    }
  };
  try {
    const servicesDir = path.join(options.dir, 'services');
    // PGlite's first start (initdb in WASM) takes seconds: overlap it with making the TPMs.
    const [tpmsResult, databaseResult] = await Promise.allSettled([
      startNodeTpms(options.tpmKind, options.nodeCount + (options.pushNodeCount ?? 0), path.join(options.dir, 'tpms')),
      createDatabase({ dataDir: servicesDir }),
    ]);
    if (tpmsResult.status === 'fulfilled') {
      closers.push(() => tpmsResult.value.close());
    }
    if (databaseResult.status === 'fulfilled') {
      closers.push(() => databaseResult.value.close());
    }
    if (tpmsResult.status === 'rejected' || databaseResult.status === 'rejected') {
      throw tpmsResult.status === 'rejected' ? tpmsResult.reason : (databaseResult as PromiseRejectedResult).reason;
    }
    const tpms: NodeTpms = tpmsResult.value;
    const database = databaseResult.value;
    const registrar = await startRegistrar(
      { dataDir: servicesDir, port: 0, tlsPort: 0, ekCheck: 'require', ekCaDirs: [tpms.ekCaDir] },
      { database, logger: log },
    );
    closers.push(() => registrar.close());
    await loadOrCreateClientTls({ dataDir: servicesDir, serviceName: 'orchestrator' });
    const caDir = caDirOf(servicesDir);
    const { certPath, keyPath } = issuedCertificatePaths(caDir, 'orchestrator');
    const tls = { caFile: path.join(caDir, CA_CERT_FILE), certFile: certPath, keyFile: keyPath };

    const nodes = await settleAll(
      tpms.tpms.slice(0, options.nodeCount).map(async (tpm, index): Promise<DemoNode> => {
        const name = `node-${index + 1}`;
        const agent = await startAgent(
          {
            dataDir: path.join(options.dir, 'nodes', name),
            registrarUrl: registrar.httpUrl,
            port: 0,
            emulate: true,
            tpm: options.tpmKind === 'swtpm' ? 'swtpm' : 'software',
            clientCaFile: tls.caFile,
          },
          { tpm, logger: log },
        );
        closers.push(() => agent.close());
        return { name, agent, tpm, port: Number(new URL(agent.url).port), run: async (file) => void (await agent.appendIma(file.path, file.digest)) };
      }),
    );
    const hostNodes = await settleAll(
      Array.from({ length: options.hostNodeCount ?? 0 }, async (_, index): Promise<DemoHostNode> => {
        const name = `node-${nodes.length + index + 1}`;
        const agent = await startHostAgent(
          buildAgentConfig({
            dataDir: path.join(options.dir, 'nodes', name),
            registrarUrl: registrar.httpUrl,
            port: 0,
            identity: 'id-secret',
            // A locally administered MAC: the demo's nodes share this machine's real ids.
            hostId: `mac:02:00:00:00:00:${(index + 1).toString(16).padStart(2, '0')}`,
            clientCaFile: tls.caFile,
          }),
          { logger: log },
        );
        closers.push(() => agent.close());
        return { name, agent, port: Number(new URL(agent.url).port) };
      }),
    );
    // Started after the agents, so it is stopped before them and never polls a closed agent.
    const verifier = await startVerifier({ dataDir: servicesDir, port: 0, quoteInterval: options.quoteIntervalSeconds, retryInterval: 1 }, { database, logger: log });
    closers.push(() => verifier.close());
    const pushNodes = await settleAll(
      tpms.tpms.slice(options.nodeCount).map(async (tpm, index): Promise<DemoPushNode> => {
        const name = `push-${index + 1}`;
        const agent = await startPushAgent(
          {
            dataDir: path.join(options.dir, 'nodes', name),
            registrarUrl: registrar.httpUrl,
            emulate: true,
            tpm: options.tpmKind === 'swtpm' ? 'swtpm' : 'software',
            verifierUrl: verifier.url,
            verifierCaFile: tls.caFile,
            backoff: { initialDelayMs: 1000, maxDelayMs: 5000 },
          },
          { tpm, logger: log },
        );
        // Closed before the verifier: it stops attesting first.
        closers.push(() => agent.close());
        return { name, agent, run: async (file) => void (await agent.emulated?.measure([{ path: file.path, fileDigest: fileDigestBytes(file.digest) }])) };
      }),
    );
    for (const node of [...nodes, ...pushNodes]) {
      for (const file of knownGoodFiles()) {
        await node.run(file);
      }
    }
    const golden = nodes[0]?.agent ?? pushNodes[0]?.agent;
    if (golden === undefined) {
      throw new InvalidParameterValue('nodeCount', 'the demo needs at least one node');
    }
    const policies = await writeGoldenPolicies(golden.imaLogPath as string, golden.bootLogPath as string, path.join(options.dir, 'policies'));
    if (options.imaGrowthMs > 0) {
      const stop = startImaGrowth(nodes, options.imaGrowthMs, log);
      closers.push(stop);
    }
    return {
      tpmKind: options.tpmKind,
      database,
      registrar,
      verifier,
      tls,
      ekCaDir: tpms.ekCaDir,
      nodes,
      pushNodes,
      hostNodes,
      policies,
      swtpmPids: () => tpms.pids(),
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

/** Writes the runtime policy, allowlist and refstate made from a node's IMA list and boot log. */
async function writeGoldenPolicies(imaLogPath: string, bootLogPath: string, dir: string): Promise<GoldenPolicies> {
  await mkdir(dir, { recursive: true });
  const imaListText = await readFile(imaLogPath, 'utf8');
  const { policy } = createRuntimePolicy({ imaListText });
  const allowlist = Object.entries(policy.digests)
    .flatMap(([file, digests]) => digests.map((digest) => `${digest}  ${file}\n`))
    .join('');
  const refstate = createRefstate(parseEventLog(new Uint8Array(await readFile(bootLogPath))), { withoutSecureBoot: true });
  return {
    runtimePolicy: await writePolicy(path.join(dir, 'runtime-policy.json'), `${JSON.stringify(policy, null, 2)}\n`),
    allowlist: await writePolicy(path.join(dir, 'allowlist.txt'), allowlist),
    refstate: await writePolicy(path.join(dir, 'refstate.json'), `${JSON.stringify(refstate, null, 2)}\n`),
  };
}

async function writePolicy(file: string, text: string): Promise<PolicyFile> {
  await writeFile(file, text);
  return { path: file, sha256: createHash('sha256').update(text).digest('hex') };
}

/** Every `intervalMs`, each node runs the next known-good file; resolves the stop function. */
function startImaGrowth(nodes: readonly DemoNode[], intervalMs: number, log: Logger): () => Promise<void> {
  const files = knownGoodFiles();
  let next = 0;
  let running: Promise<unknown> = Promise.resolve();
  const timer = setInterval(() => {
    const file = files[next % files.length] as DemoFile;
    next += 1;
    running = Promise.all(nodes.map((node) => node.run(file).catch((error: unknown) => log.debug({ err: error, node: node.name }, 'IMA growth step failed'))));
  }, intervalMs);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await running;
  };
}
