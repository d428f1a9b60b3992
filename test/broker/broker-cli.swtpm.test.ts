import { randomBytes } from 'node:crypto';
import { chmod, lstat, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { BrokerAdminClient } from '../../lib/broker/broker-admin-client.js';
import { BROKER_KEY_FILES } from '../../lib/broker/broker-keys.js';
import { CA_CERT_FILE } from '../../lib/pki/ca-directory.js';
import { caDirOf, loadOrCreateClientTls } from '../../lib/pki/service-tls.js';
import { openTpm2ToolsTpm } from '../../lib/tpm-access/tpm2-tools/tpm-adapter.js';
import { runCli, spawnCli, type CliProcess } from '../helpers/cli-runner.js';
import { closedPort } from '../helpers/ports.js';
import { startTestSwtpm, type SwtpmFixture } from '../tpm-access/tpm-test-helpers.js';
import { createTestSchema } from '../verifier/helpers/verifier-fixture.js';
import { bootTestNode, type TestNode } from './helpers/broker-fixture.js';

/** A broker started as `ironlime broker` in a child process, zero-config (embedded PGlite in its data folder). */
interface BrokerProcess {
  readonly process: CliProcess;
  readonly url: string;
  readonly dataDir: string;
  readonly caFile: string;
  readonly admin: BrokerAdminClient;
  /** Closes the admin client, sends SIGTERM and resolves to the exit code (once; later calls give the same). */
  stop(): Promise<number>;
}

/** Starts `ironlime broker --data-dir <fresh dir>` with `extra` options; `ready()` waits for its start-up lines. */
function spawnBroker(name: string, dataDir: string, port: number, extra: readonly string[]): { ready(): Promise<BrokerProcess> } {
  const child = spawnCli(['broker', '--data-dir', dataDir, '--port', String(port), '--log-level', 'warn', ...extra]);
  const url = `https://127.0.0.1:${port}`;
  let stopped: Promise<number> | undefined;
  return {
    async ready() {
      await child.waitForOutput('broker database:', 120_000);
      expect(child.stdout(), name).to.contain(`broker listening on ${url}`);
      const caFile = path.join(caDirOf(dataDir), CA_CERT_FILE);
      const tls = await loadOrCreateClientTls({ dataDir, serviceName: 'broker-admin' });
      const admin = new BrokerAdminClient({ url, ca: await readFile(caFile, 'utf8'), cert: tls.cert, key: tls.key });
      const stop = (): Promise<number> =>
        (stopped ??= admin.close().then(() => {
          child.child.kill('SIGTERM');
          return child.exited();
        }));
      return { process: child, url, dataDir, caFile, admin, stop };
    },
  };
}

/** Resolves once `file` exists (written atomically by the process that makes it). */
async function fileWritten(file: string, timeoutMs: number): Promise<void> {
  const started = Date.now();
  while (!(await stat(file).then(() => true, () => false))) {
    if (Date.now() - started > timeoutMs) {
      throw new Error(`${file} was not written within ${timeoutMs} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * The broker and the node client as an operator runs them: issuer A (`ironlime broker --issuer
 * issuer-a`, zero-config: PGlite in its data folder) and broker B (`--trust-issuer` A's JWKS, on
 * PostgreSQL with one worker) as child processes, and `ironlime kbs get-resource --mode passport` on a
 * swtpm node fetching its disk key from B with a token from A.
 */
describe('ironlime broker and ironlime kbs get-resource --mode passport (processes, swtpm node)', function () {
  this.timeout(240_000);
  let swtpm: SwtpmFixture;
  let node: TestNode;
  let issuerA: BrokerProcess | undefined;
  let brokerB: BrokerProcess | undefined;
  const secret = new Uint8Array(randomBytes(32));
  const dataDirs: string[] = [];
  let dropSchema: (() => Promise<void>) | undefined;

  function getResource(uri: string, output: string, agentId = node.agentId): Promise<{ code: number; stderr: string }> {
    return runCli([
      'kbs', 'get-resource', uri,
      '--mode', 'passport',
      '--url', (brokerB as BrokerProcess).url,
      '--ca', (brokerB as BrokerProcess).caFile,
      '--issuer-url', (issuerA as BrokerProcess).url,
      '--issuer-ca', (issuerA as BrokerProcess).caFile,
      '--agent-id', agentId,
      '--tcti', swtpm.swtpm.tcti,
      '--ima-log', node.emulated.imaLogPath,
      '--boot-log', node.emulated.bootLogPath,
      '--output', output,
    ]);
  }

  before(async function () {
    swtpm = await startTestSwtpm();
    node = await bootTestNode(await openTpm2ToolsTpm({ tcti: swtpm.swtpm.tcti }), { tcti: swtpm.swtpm.tcti });
    const dirA = await mkdtemp(path.join(tmpdir(), 'ironlime-broker-cli-a-'));
    const dirB = await mkdtemp(path.join(tmpdir(), 'ironlime-broker-cli-b-'));
    dataDirs.push(dirA, dirB);
    const startingA = spawnBroker('issuer A', dirA, await closedPort(), ['--issuer', 'issuer-a']);
    // A writes its JWKS before it opens its database: B starts then, both databases initialise at once.
    const jwks = path.join(dirA, 'broker', BROKER_KEY_FILES.tokenJwks);
    await fileWritten(jwks, 60_000);
    const schemaB = await createTestSchema();
    dropSchema = () => schemaB.drop();
    const startingB = spawnBroker('broker B', dirB, await closedPort(), [
      '--issuer', 'broker-b',
      '--trust-issuer', jwks,
      '--database', schemaB.url,
      '--workers', '1',
    ]);
    [issuerA, brokerB] = await Promise.all([startingA.ready(), startingB.ready()]);
    expect(brokerB.process.stdout()).to.contain('broker trusts tokens from: broker-b, ' + jwks);
    await issuerA.admin.putNode(node.agentId, { akTpm: node.akTpm, runtimePolicy: await node.runtimePolicy(), mbRefstate: await node.refstate() });
    await brokerB.admin.putNode(node.agentId, { groups: ['rack4'] });
    await brokerB.admin.putResource({ repository: 'node', type: 'disk-key', tag: 'u12' }, secret, { agents: [node.agentId] });
    await brokerB.admin.putResource({ repository: 'node', type: 'disk-key', tag: 'u13' }, new Uint8Array([1]), { agents: ['another-node'] });
  });

  after(async function () {
    for (const broker of [brokerB, issuerA]) {
      await broker?.stop();
    }
    await dropSchema?.();
    for (const dir of dataDirs) {
      await rm(dir, { recursive: true, force: true });
    }
    await node?.dispose();
    await swtpm?.cleanup();
  });

  it('exit 0: the node gets its disk key from B with a token issued by A (file mode 0600)', async function () {
    const output = path.join(node.dir, 'disk.key');
    const run = await getResource('kbs:///node/disk-key/u12', output);
    expect(run.code, run.stderr).to.equal(0);
    expect(new Uint8Array(await readFile(output))).to.deep.equal(secret);
    expect((await stat(output)).mode & 0o777).to.equal(0o600);
  });

  it('--output replaces an existing 0644 file with a 0600 one, and a symlink planted there rather than writing through it', async function () {
    const existing = path.join(node.dir, 'existing.key');
    await writeFile(existing, 'old', { mode: 0o644 });
    await chmod(existing, 0o644);
    const written = await getResource('kbs:///node/disk-key/u12', existing);
    expect(written.code, written.stderr).to.equal(0);
    expect(new Uint8Array(await readFile(existing))).to.deep.equal(secret);
    expect((await stat(existing)).mode & 0o777).to.equal(0o600);

    const decoy = path.join(node.dir, 'decoy');
    await writeFile(decoy, 'not yours', { mode: 0o644 });
    const planted = path.join(node.dir, 'planted.key');
    await symlink(decoy, planted);
    const replaced = await getResource('kbs:///node/disk-key/u12', planted);
    expect(replaced.code, replaced.stderr).to.equal(0);
    expect(await readFile(decoy, 'utf8'), 'the symlink target is untouched').to.equal('not yours');
    expect((await lstat(planted)).isSymbolicLink()).to.equal(false);
    expect((await stat(planted)).mode & 0o777).to.equal(0o600);
    expect(new Uint8Array(await readFile(planted))).to.deep.equal(secret);
  });

  it("exit 1 when B's policy refuses the node, and when A refuses to issue a token", async function () {
    const output = path.join(node.dir, 'refused.key');
    const denied = await getResource('kbs:///node/disk-key/u13', output);
    expect(denied.code).to.equal(1);
    expect(denied.stderr).to.match(/^ironlime: kbs: refused: https:\/\/\S+\/kbs\/v0\/resource\/node\/disk-key\/u13: 403 PolicyDeny: /);
    const unknown = await getResource('kbs:///node/disk-key/u12', output, 'not-registered-at-a');
    expect(unknown.code).to.equal(1);
    expect(unknown.stderr).to.match(/^ironlime: kbs: refused: https:\/\/\S+\/kbs\/v0\/attest: 401 AttestationError: /);
    await stat(output).then(
      () => expect.fail('nothing is written when refused'),
      (error: NodeJS.ErrnoException) => expect(error.code).to.equal('ENOENT'),
    );
  });

  it('both broker processes stop cleanly on SIGTERM (exit 0)', async function () {
    for (const broker of [brokerB, issuerA] as BrokerProcess[]) {
      expect(await broker.stop()).to.equal(0);
      expect(broker.process.stdout()).to.contain('broker stopped (SIGTERM)');
    }
  });
});
