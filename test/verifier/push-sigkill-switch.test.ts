import { readFileSync, rmSync, mkdtempSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { pino } from 'pino';
import { fileAgentLogs } from '../../lib/agent/agent-logs.js';
import { PushAgent } from '../../lib/agent/push/push-agent.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { spawnCli, type CliProcess } from '../helpers/cli-runner.js';
import { TEST_DATABASE_URL } from '../helpers/databases.js';
import { usePushVerifier, PUSH_SETTINGS } from './helpers/push-verifier.js';
import { eventually } from './helpers/verifier-fixture.js';

/** A TCP front door that sends each new connection to whichever port `target` names now (a load balancer after a fail-over). */
class SwitchingFront {
  target = 0;
  /** Called once with the time a client sent `bytes` or more at once (the evidence's PATCH: its capabilities' POST is smaller), then cleared. */
  onLargeWrite: { bytes: number; then: () => void } | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly server: Server = createServer((client) => {
    const upstream = connect(this.target, '127.0.0.1');
    for (const socket of [client, upstream]) {
      this.sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => {
        this.sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    client.on('data', (chunk: Buffer) => {
      upstream.write(chunk);
      const waiting = this.onLargeWrite;
      if (waiting !== undefined && chunk.length >= waiting.bytes) {
        this.onLargeWrite = undefined;
        waiting.then();
      }
    });
    upstream.pipe(client);
  });

  async start(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return (this.server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

/**
 * Two `ironlime verifier` processes on one PostgreSQL serve a push agent through one front door. The
 * one serving it is SIGKILLed at a random point of the agent's cycle (often while a verdict waits for
 * its shared transaction), the door is switched to the other, and the killed one is started again; a
 * few times over. Each time the agent, by its own loop and back-off, is attested again by the survivor;
 * it is never failed; every stored verdict is a PASS and their number is `attestation_count` (a verdict
 * lost or counted twice would break it).
 */
describe('push model: the verifier process serving an agent SIGKILLed, the agent switched to another (real processes, PostgreSQL)', function () {
  this.timeout(240_000);
  const push = usePushVerifier({ pushTimeout: 600 });
  const dir = mkdtempSync(path.join(tmpdir(), 'ironlime-push-sigkill-'));
  const front = new SwitchingFront();
  const processes = new Map<string, CliProcess>();
  let databaseUrl: string;

  after(async function () {
    for (const running of processes.values()) running.child.kill('SIGKILL');
    await front.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Starts (or starts again) verifier process `name`; resolves to its HTTPS port. */
  async function startProcess(name: string): Promise<number> {
    const running = spawnCli([
      'verifier', '--data-dir', path.join(dir, name), '--port', '0', '--database', databaseUrl, '--instance-id', name,
      '--quote-interval', String(PUSH_SETTINGS.quoteInterval), '--log-level', 'error',
    ]);
    processes.set(name, running);
    await running.waitForOutput('verifier listening on', 60_000);
    return Number(/verifier listening on https:\/\/[^:]+:(\d+)/.exec(running.stdout())?.[1]);
  }

  it('is attested again by the survivor after each kill, never failed, no verdict lost or counted twice', async function () {
    const schema = ((await push.opened.database.knex.raw('select current_schema() as name')) as { rows: { name: string }[] }).rows[0]?.name ?? '';
    const url = new URL(TEST_DATABASE_URL);
    url.searchParams.set('options', `-c search_path=${schema}`);
    databaseUrl = url.toString();
    process.env['IRONLIME_VERIFIER_PUSH_TIMEOUT'] = '600';
    const ports = new Map<string, number>();
    try {
      ports.set('proc-a', await startProcess('proc-a'));
      ports.set('proc-b', await startProcess('proc-b'));
    } finally {
      delete process.env['IRONLIME_VERIFIER_PUSH_TIMEOUT'];
    }
    const caCert = ['proc-a', 'proc-b'].map((name) => readFileSync(path.join(dir, name, 'ca', 'cacert.crt'), 'utf8')).join('\n');
    front.target = ports.get('proc-a') as number;
    const frontPort = await front.start();

    const node = await push.bootNode();
    expect((await push.enrol(node)).status).to.equal(200);
    const agent = new PushAgent({
      uuid: node.uuid,
      verifierUrl: `https://127.0.0.1:${frontPort}`,
      caCert,
      tpm: node.tpm,
      ak: node.ak,
      logs: fileAgentLogs(path.join(push.dir, `${node.uuid}.ima`), path.join(push.dir, `${node.uuid}.boot`)),
      bootTime: new Date(Date.now() - 60_000),
      backoff: { initialDelayMs: 100, maxDelayMs: 400 },
      log: pino({ level: process.env['PUSH_SIGKILL_LOG'] ?? 'silent' }),
    });
    const running = new AbortController();
    const loop = agent.run(running.signal);
    const count = async (): Promise<number> => (await push.stored(node.uuid)).state.attestationCount;
    try {
      await eventually('the first attestation', async () => (await count()) >= 1, 60_000, 50);
      let serving = 'proc-a';
      for (let kill = 0; kill < 6; kill += 1) {
        const other = serving === 'proc-a' ? 'proc-b' : 'proc-a';
        // Alternately at a random point of the agent's cycle (about a second long) and a few ms after
        // the evidence went out, while its verdict waits for the shared transaction (up to 100 ms).
        if (kill % 2 === 0) {
          await new Promise((resolve) => setTimeout(resolve, 200 + Math.floor(Math.random() * 1200)));
        } else {
          await new Promise<void>((resolve) => (front.onLargeWrite = { bytes: 2400, then: () => setTimeout(resolve, Math.floor(Math.random() * 60)) }));
        }
        processes.get(serving)?.child.kill('SIGKILL');
        await processes.get(serving)?.exited();
        front.target = ports.get(other) as number;
        const atKill = await count();
        await eventually(`attested by ${other} after kill ${kill + 1}`, async () => (await count()) >= atKill + 2, 20_000, 50).catch((error: unknown) => {
          process.stdout.write(`${other} stderr: ${processes.get(other)?.stderr().slice(-3000)}\n`);
          throw error;
        });
        expect((await push.stored(node.uuid)).state.operationalState).not.to.equal(OperationalState.FAILED);
        ports.set(serving, await startProcess(serving));
        serving = other;
      }
    } finally {
      running.abort();
      await loop;
    }
    const stored = await push.stored(node.uuid);
    const outcomes = (await push.opened.database.knex('verifier_attestation_history').where({ agent_id: node.uuid }).select('outcome')) as { outcome: string }[];
    expect(stored.state.operationalState).not.to.equal(OperationalState.FAILED);
    expect(outcomes.filter((round) => round.outcome !== 'pass')).to.deep.equal([]);
    expect(outcomes).to.have.length(stored.state.attestationCount);
  });
});
