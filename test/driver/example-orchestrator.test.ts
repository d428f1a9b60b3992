import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { runExample } from '../../examples/orchestrator.js';
import { startDemoEnvironment, type DemoEnvironment, type DemoNode } from '../../lib/demo/demo-environment.js';
import { REPO_ROOT } from '../helpers/paths.js';
import { seedPgliteFolder } from '../helpers/pglite-template.js';

describe('example orchestrator program', function () {
  this.timeout(60_000);
  let dir: string;

  before(async function () {
    dir = mkdtempSync(path.join(tmpdir(), 'ironlime-example-'));
    // The program's PGlite begins as a copy of the process's initdb'd folder: its first start is not the point here.
    await seedPgliteFolder(path.join(dir, 'data'));
    writeFileSync(
      path.join(dir, 'ironlime.json'),
      JSON.stringify({ dataDir: path.join(dir, 'data'), enabledAttestationInterfaces: ['no-attestation', 'fake'] }),
    );
    writeFileSync(
      path.join(dir, 'nodes.json'),
      JSON.stringify([
        { name: 'plain', attestationInterface: 'no-attestation' },
        { name: 'untrusted', attestationInterface: 'fake', driverInfo: { fake_outcome: 'fail' } },
      ]),
    );
  });

  after(function () {
    rmSync(dir, { recursive: true, force: true });
  });

  it('walks every node through clean and deploy, printing each transition', async function () {
    const lines: string[] = [];
    const code = await runExample(['--nodes', path.join(dir, 'nodes.json'), '--config', path.join(dir, 'ironlime.json')], (line) => lines.push(line));
    expect(code).to.equal(1);
    expect(lines).to.deep.equal([
      'plain        none -> enroll',
      'plain        enroll -> manageable  (driver_info validated)',
      'plain        manageable -> cleaning',
      'plain        cleaning -> available  (not attested (no-attestation))',
      'plain        available -> deploying',
      'plain        deploying -> active  (not attested (no-attestation))',
      'untrusted    none -> enroll',
      'untrusted    enroll -> manageable  (driver_info validated)',
      'untrusted    manageable -> cleaning',
      'untrusted    cleaning -> clean failed  (fake driver scripted to fail through driver_info.fake_outcome)',
      '1 of 2 node(s) active',
    ]);
  });

  it('imports nothing but the package root, its own files and Node built-ins', function () {
    const dir = path.join(REPO_ROOT, 'examples');
    const sources = readdirSync(dir).filter((file) => file.endsWith('.ts'));
    expect(sources).to.include.members(['orchestrator.ts']);
    for (const file of sources) {
      const text = readFileSync(path.join(dir, file), 'utf8');
      const specifiers = [...text.matchAll(/^\s*(?:import|export)[^'"]*from\s+'([^']+)'/gm)].map((match) => match[1] as string);
      expect(specifiers.length, file).to.be.greaterThan(0);
      for (const specifier of specifiers) {
        expect(specifier, `${file} imports ${specifier}`).to.match(/^(\.\.\/index\.js|\.\/[a-z-]+\.js|node:[a-z/]+)$/);
      }
    }
  });

  it('prints its usage without --nodes', async function () {
    const lines: string[] = [];
    expect(await runExample([], (line) => lines.push(line))).to.equal(2);
    expect(lines).to.deep.equal(['usage: orchestrator --nodes <nodes.json> [--config <ironlime.json>] [--ek-ca-dir <dir>]...']);
  });
});

describe('example orchestrator program on an emulated node', function () {
  this.timeout(180_000);
  let dir: string;
  let env: DemoEnvironment;

  before(async function () {
    dir = mkdtempSync(path.join(tmpdir(), 'ironlime-example-node-'));
    await seedPgliteFolder(path.join(dir, 'services'));
    env = await startDemoEnvironment({ dir, tpmKind: 'software', nodeCount: 1, quoteIntervalSeconds: 1, imaGrowthMs: 0 });
    const node = env.nodes[0] as DemoNode;
    writeFileSync(
      path.join(dir, 'nodes.json'),
      JSON.stringify([
        {
          name: 'emulated',
          attestationInterface: 'keylime',
          driverInfo: { keylime_runtime_policy: env.policies.runtimePolicy.path, keylime_runtime_policy_checksum: env.policies.runtimePolicy.sha256 },
          agent: { uuid: node.agent.uuid, address: '127.0.0.1', port: node.port },
        },
      ]),
    );
  });

  after(async function () {
    await env?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A config of its own per run: each run enrols the node in a fresh node table (a copy of the initdb'd folder). */
  async function configFile(name: string): Promise<string> {
    await seedPgliteFolder(path.join(dir, name));
    const file = path.join(dir, `${name}.json`);
    writeFileSync(
      file,
      JSON.stringify({
        dataDir: path.join(dir, name),
        enabledAttestationInterfaces: ['keylime'],
        keylime: {
          verifierUrl: env.verifier.url,
          registrarUrl: env.registrar.tlsUrl,
          tlsCaCert: env.tls.caFile,
          tlsClientCert: env.tls.certFile,
          tlsClientKey: env.tls.keyFile,
          statusTimeoutSeconds: 60,
          statusPollIntervalSeconds: 1,
        },
      }),
    );
    return file;
  }

  it("refuses the node's emulated EK without --ek-ca-dir, and deploys it with the node's EK CA folder", async function () {
    const refused: string[] = [];
    expect(await runExample(['--nodes', path.join(dir, 'nodes.json'), '--config', await configFile('vendor-store-only')], (line) => refused.push(line))).to.equal(1);
    expect(refused.join('\n')).to.match(/cleaning -> clean failed .*\(ek-certificate\)/);

    const lines: string[] = [];
    const code = await runExample(['--nodes', path.join(dir, 'nodes.json'), '--config', await configFile('with-ek-ca'), '--ek-ca-dir', env.ekCaDir], (line) =>
      lines.push(line),
    );
    expect(lines.at(-1)).to.equal('1 of 1 node(s) active');
    expect(code).to.equal(0);
  });
});
