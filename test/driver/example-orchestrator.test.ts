import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { runExample } from '../../examples/orchestrator.js';
import { REPO_ROOT } from '../helpers/paths.js';

describe('example orchestrator program', function () {
  this.timeout(60_000);
  let dir: string;

  before(function () {
    dir = mkdtempSync(path.join(tmpdir(), 'ironlime-example-'));
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
    expect(lines).to.deep.equal(['usage: orchestrator --nodes <nodes.json> [--config <ironlime.json>]']);
  });
});
