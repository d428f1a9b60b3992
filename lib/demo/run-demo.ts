import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ExampleOrchestrator, STATES, type Transition } from '../provisioning/example-orchestrator.js';
import type { Node } from '../../interfaces/node.js';
import { evilFile } from './demo-catalog.js';
import { demoConfig } from './demo-config.js';
import { startDemoBroker, type DemoBroker } from './demo-broker.js';
import { startDemoEnvironment, type DemoEnvironment } from './demo-environment.js';
import { formatTable, nodeRow, type NodeRow } from './demo-table.js';
import { waitForVerifierFailure } from './verifier-watch.js';
import { issueApiToken } from '../auth/api-token.js';
import { loadOrCreateTokenKey } from '../auth/token-signing-key.js';
import { CA_CERT_FILE } from '../pki/ca-directory.js';
import { DEFAULT_TENANT } from '../verifier/verifier-access.js';
import { missingSwtpmProgram, type NodeTpmKind } from './node-tpms.js';

export interface DemoOptions {
  /** Use the in-process software TPM even when swtpm is installed. */
  readonly softwareTpm?: boolean;
  /** Adds a push-model node (issue 13): it opens no port and attests to the verifier itself. */
  readonly push?: boolean;
  /** Receives each line of output. */
  readonly print: (line: string) => void;
  /** Aborting it (SIGINT) stops the demo: everything is shut down and the result's exit code is 130. */
  readonly signal?: AbortSignal;
  /** After the result, keep the services and nodes up (the dashboard stays reachable) until `signal` aborts. */
  readonly keepRunning?: boolean;
}

export interface DemoResult {
  /** 0: the tampered node was refused and the others stayed trusted; 1: it went otherwise; 130: interrupted. */
  readonly exitCode: number;
  readonly tpmKind: NodeTpmKind;
  /** The final table. */
  readonly nodes: readonly NodeRow[];
  /** Process ids of the swtpm processes the demo ran (all stopped by the time it resolves). */
  readonly swtpmPids: readonly number[];
  /** The temporary folder it worked in (removed by the time it resolves). */
  readonly dir: string;
  readonly elapsedMs: number;
}

const NODE_COUNT = 3;
const TAMPERED = 'node-3';
/** The node without a TPM (id-secret): cleaned, but refused deploy under the default minimum, hardware-tpm. */
const WITHOUT_TPM = 'node-4';
/** The disk-key cell of a node that does not ask the broker in the demo (the node without a TPM, push nodes). */
const NOT_ASKED = '-';

/**
 * The one-command demo (`npm run demo`, `ironlime demo`): on a bare machine it starts a registrar and
 * a verifier on embedded PGlite with a fresh CA in a temporary folder, boots three emulated nodes (swtpm
 * when `swtpm`, `swtpm_setup` and `tpm2_quote` are on PATH, else the software TPM, and says which), each
 * with a real UEFI boot log and a growing IMA list; makes a runtime policy and a boot refstate from the
 * first node; enrols, cleans and deploys the nodes through the example orchestrator with the keylime
 * driver; then node-3 runs a binary outside its policy, the verifier catches it, and its next deploy
 * is refused while the other two redeploy. Everything it started is stopped and the folder removed,
 * also on error or abort.
 */
export async function runDemo(options: DemoOptions): Promise<DemoResult> {
  const started = Date.now();
  const say = (line: string): void => options.print(`[${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s] ${line}`);
  const missing = missingSwtpmProgram();
  const tpmKind: NodeTpmKind = options.softwareTpm === true || missing !== undefined ? 'software' : 'swtpm';
  options.print('ironlime demo: Keylime attestation at every clean and deploy of four bare-metal nodes (three with a TPM, one without)');
  options.print(
    tpmKind === 'swtpm'
      ? 'TPM: swtpm (swtpm, swtpm_setup and tpm2_quote found on PATH), one per node'
      : `TPM: the in-process software TPM (${options.softwareTpm === true ? '--software-tpm given' : `${missing} not found on PATH`}): emulated, no root of trust`,
  );
  const dir = await mkdtemp(path.join(tmpdir(), 'ironlime-demo-'));
  let environment: DemoEnvironment | undefined;
  let broker: DemoBroker | undefined;
  let startup: Promise<DemoEnvironment> | undefined;
  const swtpmPids = new Set<number>();
  let exitCode = 1;
  let rows: NodeRow[] = [];
  try {
    say(`starting registrar and verifier on embedded PostgreSQL (PGlite), fresh CA in ${dir}`);
    startup = startDemoEnvironment({
      dir,
      tpmKind,
      nodeCount: NODE_COUNT,
      pushNodeCount: options.push === true ? 1 : 0,
      hostNodeCount: 1,
      quoteIntervalSeconds: 1,
      imaGrowthMs: 1000,
    });
    // Settled in `finally` when an abort wins the race.
    startup.catch(() => undefined);
    environment = await abortable(startup, options.signal);
    const env = environment;
    env.swtpmPids().forEach((pid) => swtpmPids.add(pid));
    say(`registrar ${env.registrar.tlsUrl}, verifier ${env.verifier.url}`);
    await printDashboardAccess(env.verifier.url, path.join(dir, 'services'), say);
    say(`${env.nodes.length} nodes booted: UEFI boot log replayed into each TPM, IMA lists growing`);
    say(`${WITHOUT_TPM} has no TPM: registered as id-secret (host id + a secret made at first registration), checked for liveness only`);
    say('runtime policy and boot refstate made from known-good node-1');

    broker = await startDemoBroker(env, dir);
    const kbs = broker;
    say(`KBS broker ${kbs.running.url}: a disk key per node, released at deploy, fetched by the node after attestation`);
    const orchestrator = await ExampleOrchestrator.create({
      config: demoConfig(env, dir),
      database: env.database,
      keylime: { extraEkCaDirs: [env.ekCaDir] },
      nodeSecrets: kbs.secrets,
      onTransition: (t) => say(describeTransition(t)),
    });
    const nodes: Node[] = [];
    const located = [...env.nodes.map((node) => ({ name: node.name, uuid: node.agent.uuid, port: node.port })), ...env.hostNodes.map((node) => ({ name: node.name, uuid: node.agent.uuid, port: node.port }))];
    for (const demoNode of located) {
      nodes.push(
        await orchestrator.enrollNode({
          name: demoNode.name,
          attestationInterface: 'keylime',
          driverInfo: policyDriverInfo(env),
        }),
      );
    }
    for (const [index, node] of nodes.entries()) {
      const demoNode = located[index] as (typeof located)[number];
      await orchestrator.reportAgent(node.uuid, { uuid: demoNode.uuid, address: '127.0.0.1', port: demoNode.port });
      say(`${demoNode.name} ramdisk reports keylime agent ${demoNode.uuid} at 127.0.0.1:${demoNode.port}`);
    }
    for (const pushNode of env.pushNodes) {
      nodes.push(
        await orchestrator.enrollNode({
          name: pushNode.name,
          attestationInterface: 'keylime',
          driverInfo: {
            ...policyDriverInfo(env),
            keylime_agent_uuid: pushNode.agent.uuid,
            keylime_agent_mode: 'push',
          },
        }),
      );
      say(`${pushNode.name}: push agent ${pushNode.agent.uuid}, no open port, attests to the verifier itself`);
    }
    const table = async (): Promise<void> => {
      // Each node asks the broker for its disk key, with its own TPM, as it would at boot.
      const listed = await orchestrator.nodes.listNodes();
      rows = await Promise.all(
        listed.map(async (node) => {
          const demoNode = env.nodes.find((candidate) => candidate.name === node.name);
          return nodeRow(node, demoNode === undefined ? { cell: NOT_ASKED } : await kbs.fetchDiskKey(demoNode, kbs.secrets.resourceOf(node)));
        }),
      );
      formatTable(rows).forEach((line) => options.print(line));
      // Only the kinds of node this run has: push nodes are there with --push alone.
      const notAsked = rows
        .filter((row) => row.diskKey === NOT_ASKED)
        .map((row) => `${row.name}: ${env.pushNodes.some((pushNode) => pushNode.name === row.name) ? 'a push node' : 'no TPM'}`);
      if (notAsked.length > 0) {
        options.print(`disk key ${NOT_ASKED}: the node does not ask the broker for one in this demo (${notAsked.join('; ')})`);
      }
    };

    await abortable(Promise.all(nodes.map((node) => orchestrator.clean(node.uuid))), options.signal);
    await abortable(Promise.all(nodes.map((node) => orchestrator.deploy(node.uuid))), options.signal);
    await table();
    say(`${WITHOUT_TPM} was cleaned (any identity may be) and refused deploy: its trust level id-secret is below attestation.minimumTrustLevel.deploy (default hardware-tpm)`);

    const target = env.nodes.find((node) => node.name === TAMPERED) as DemoEnvironment['nodes'][number];
    const evil = evilFile();
    await target.run(evil);
    say(`${TAMPERED} runs ${evil.path} (sha256 ${evil.digest.slice(0, 16)}..., in no policy)`);
    const failure = await abortable(waitForVerifierFailure(env, target.agent.uuid, 30_000), options.signal);
    say(`verifier: ${TAMPERED} failed attestation (${failure})`);

    say('rebuilding every node');
    await abortable(Promise.all(nodes.map((node) => orchestrator.deploy(node.uuid))), options.signal);
    await table();
    const byName = new Map(rows.map((row) => [row.name, row]));
    const refused = byName.get(TAMPERED)?.state === STATES.deployFailed && byName.get(TAMPERED)?.diskKey.startsWith('refused') === true;
    const withoutTpm = byName.get(WITHOUT_TPM);
    const gated = withoutTpm?.state === STATES.deployFailed && withoutTpm.trust === 'id-secret';
    const others = rows.filter((row) => row.name !== TAMPERED && row.name !== WITHOUT_TPM);
    const trusted = others.every((row) => row.state === STATES.active && row.attestation === 'passed' && (row.diskKey.startsWith('released') || row.diskKey === NOT_ASKED));
    exitCode = refused && gated && trusted ? 0 : 1;
    options.print(
      exitCode === 0
        ? `result: ${TAMPERED} was refused, and its disk key with it; ${WITHOUT_TPM} (no TPM, id-secret) was cleaned but refused deploy (minimum hardware-tpm); ${others.map((r) => r.name).join(' and ')} stayed trusted and active`
        : 'result: UNEXPECTED: see the table above',
    );
    if (options.keepRunning === true && options.signal !== undefined) {
      options.print(`kept running (--keep-running): dashboard at ${env.verifier.url}/dashboard; Ctrl-C stops everything`);
      const signal = options.signal;
      await new Promise<void>((resolve) => (signal.aborted ? resolve() : signal.addEventListener('abort', () => resolve(), { once: true })));
    }
  } catch (error) {
    if (options.signal?.aborted === true) {
      exitCode = 130;
      options.print('interrupted: shutting down');
    } else {
      options.print(`demo failed: ${error instanceof Error ? error.message : String(error)}`);
      exitCode = 1;
    }
  } finally {
    // Interrupted while starting: let the start finish (or fail and clean up after itself), then stop it.
    environment ??= await startup?.catch(() => undefined);
    environment?.swtpmPids().forEach((pid) => swtpmPids.add(pid));
    await broker?.close().catch(() => undefined);
    await environment?.close();
    await rm(dir, { recursive: true, force: true });
    say(`stopped the services, agents and ${tpmKind === 'swtpm' ? 'swtpm processes' : 'software TPMs'}; removed ${dir}`);
  }
  return { exitCode, tpmKind, nodes: rows, swtpmPids: [...swtpmPids], dir, elapsedMs: Date.now() - started };
}

/** The `driver_info` policy fields every demo node gets: the golden runtime policy and refstate. */
function policyDriverInfo(env: DemoEnvironment): Record<string, string> {
  return {
    keylime_runtime_policy: env.policies.runtimePolicy.path,
    keylime_runtime_policy_checksum: env.policies.runtimePolicy.sha256,
    keylime_mb_refstate: env.policies.refstate.path,
    keylime_mb_refstate_checksum: env.policies.refstate.sha256,
  };
}

function describeTransition(transition: Transition): string {
  const name = transition.node.name ?? transition.node.uuid;
  const detail = transition.detail === undefined ? '' : `: ${transition.detail}`;
  return `${name} ${transition.from} -> ${transition.to}${detail}`;
}

/** `promise`, or a rejection with the signal's reason as soon as it aborts. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) {
    return promise;
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    if (signal.aborted) {
      onAbort();
    } else {
      signal.addEventListener('abort', onAbort, { once: true });
    }
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/**
 * Where the dashboard is and two tokens to log in with (viewer and admin of the `default` tenant,
 * 8 hours), minted with the verifier's token key. The browser will not know the demo's fresh CA:
 * accept the certificate, or import the CA file printed here.
 */
async function printDashboardAccess(verifierUrl: string, servicesDir: string, say: (line: string) => void): Promise<void> {
  const key = loadOrCreateTokenKey(servicesDir).privateKey;
  const token = (role: 'viewer' | 'admin'): Promise<string> => issueApiToken({ subject: `demo-${role}`, role, tenant: DEFAULT_TENANT, ttlSeconds: 8 * 3600 }, key);
  say(`dashboard: ${verifierUrl}/dashboard (self-signed: CA ${path.join(servicesDir, 'ca', CA_CERT_FILE)})`);
  say(`  viewer token: ${await token('viewer')}`);
  say(`  admin token:  ${await token('admin')}`);
}
