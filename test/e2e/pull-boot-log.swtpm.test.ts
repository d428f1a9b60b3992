import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import type { RunningAgent } from '../../lib/agent/agent-server.js';
import { BootLogMemo } from '../../lib/attestation/boot-log-memo.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import type { TenantClient } from '../../lib/tenant/tenant-client.js';
import { replayBootLog } from '../../lib/tpm-access/boot-log-replayer.js';
import { openTpm2ToolsTpm, type Tpm2ToolsTpm } from '../../lib/tpm-access/tpm2-tools/tpm-adapter.js';
import { createDeployment, eventually, refstateForAgent, type Deployment } from '../verifier/helpers/verifier-fixture.js';

const run = promisify(execFile);

/** A relay in front of the agent that counts the bytes the agent sends, and can play a node that is down. */
class CountingRelay {
  bytesFromAgent = 0;
  private down = false;
  private readonly sockets = new Set<Socket>();
  private server: Server | undefined;
  port = 0;

  constructor(private readonly target: { host: string; port: number }) {}

  async start(): Promise<void> {
    this.server = createServer((client) => {
      if (this.down) {
        client.destroy();
        return;
      }
      const upstream = connect(this.target);
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on('error', () => undefined);
        socket.on('close', () => {
          this.sockets.delete(socket);
          client.destroy();
          upstream.destroy();
        });
      }
      upstream.on('data', (chunk: Buffer) => (this.bytesFromAgent += chunk.length));
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  setDown(down: boolean): void {
    this.down = down;
    if (down) {
      for (const socket of this.sockets) {
        socket.destroy();
      }
    }
  }

  async close(): Promise<void> {
    this.setDown(true);
    await new Promise<void>((resolve) => (this.server === undefined ? resolve() : this.server.close(() => resolve())));
  }
}

/**
 * Pull rounds without the unchanged boot log (issue 10) against a real swtpm node: the in-process
 * verifier remembers the log of a passing round and asks later rounds without PCR 0; a TPM Reset of the
 * node's swtpm brings one full round (and no failure); a boot PCR extended at runtime fails as it
 * would with the log.
 */
describe('pull rounds without the boot log (swtpm node, issue 10)', function () {
  this.timeout(120_000);
  let deployment: Deployment;
  let node: RunningAgent;
  let tenant: TenantClient;
  let relay: CountingRelay;
  let tpm: Tpm2ToolsTpm;
  let tcti: string;
  let memo: BootLogMemo;

  const passes = async (): Promise<number> => (await tenant.history(node.uuid, 1000)).filter((round) => round.outcome === 'pass').length;

  before(async function () {
    deployment = await createDeployment();
    const verifier = await deployment.startVerifier({ quoteInterval: 0.3, retryInterval: 0.2, maxRetries: 30, exponentialBackoff: false });
    memo = verifier.container.resolve(BootLogMemo);
    node = await deployment.startAgent('boot-log-node', { tpm: 'swtpm' });
    tcti = (JSON.parse(readFileSync(path.join(node.config.dataDir, 'emulation.json'), 'utf8')) as { tcti: string }).tcti;
    tpm = await openTpm2ToolsTpm({ tcti });
    const url = new URL(node.url);
    relay = new CountingRelay({ host: url.hostname, port: Number(url.port) });
    await relay.start();
    tenant = deployment.tenant();
    // A refstate and no runtime policy: the mask is the boot PCRs (PCR 0 among them), no PCR 10.
    await tenant.addAgent(node.uuid, { agentUrl: `https://127.0.0.1:${relay.port}`, mbPolicy: refstateForAgent(node) });
    await tenant.waitForState(node.uuid, [OperationalState.GET_QUOTE], { timeoutMs: 20_000 });
  });

  after(async function () {
    await tpm?.close().catch(() => undefined);
    await relay?.close();
    await deployment?.dispose();
  });

  it('passes its later rounds with replies that carry no boot log', async function () {
    await eventually('two passing rounds', async () => (await passes()) >= 2);
    expect(memo.recall(node.uuid)).to.not.equal(undefined);
    const logBytes = Buffer.from(readFileSync(node.bootLogPath as string)).toString('base64').length;
    const before = await passes();
    relay.bytesFromAgent = 0;
    await eventually('four more passing rounds', async () => (await passes()) >= before + 4);
    const rounds = (await passes()) - before;
    expect(relay.bytesFromAgent / rounds).to.be.below(logBytes / 3);
    expect((await tenant.history(node.uuid, 1000)).filter((round) => round.outcome === 'fail')).to.deep.equal([]);
  });

  it('a TPM Reset of the node (reboot, the boot log replayed) brings one full round that passes, and no failure', async function () {
    const resetCount = memo.recall(node.uuid)?.resetCount as number;
    relay.setDown(true);
    const env = { ...process.env, TPM2TOOLS_TCTI: tcti };
    await run('tpm2_shutdown', ['-c'], { env });
    const port = Number(/port=(\d+)/.exec(tcti)?.[1]);
    await run('swtpm_ioctl', ['--tcp', `127.0.0.1:${port + 1}`, '-i']);
    await run('tpm2_startup', ['-c'], { env });
    await replayBootLog(tpm, new Uint8Array(readFileSync(node.bootLogPath as string)));
    const before = await passes();
    relay.setDown(false);
    await eventually('a passing round after the reboot', async () => (await passes()) > before, 30_000);
    expect(memo.recall(node.uuid)?.resetCount).to.equal(resetCount + 1);
    const rounds = await tenant.history(node.uuid, 1000);
    expect(rounds.filter((round) => round.outcome === 'fail')).to.deep.equal([]);
    const status = await tenant.waitForState(node.uuid, [OperationalState.GET_QUOTE], { timeoutMs: 1_000 });
    expect(status.last_event_id).to.equal(null);
  });

  it('a boot PCR extended at runtime fails the next round with measured_boot.invalid_pcr_1', async function () {
    await eventually('a round asked without the log', async () => memo.recall(node.uuid) !== undefined);
    await tpm.extendPcr(1, 'sha256', new Uint8Array(createHash('sha256').update('runtime change').digest()));
    await tenant.waitForState(node.uuid, [OperationalState.INVALID_QUOTE], { timeoutMs: 15_000 });
    const [latest] = await tenant.history(node.uuid, 1);
    expect(latest?.failures.map((failure) => failure.event_id)).to.include('measured_boot.invalid_pcr_1');
  });
});
