import path from 'node:path';
import { expect } from 'chai';
import { runCli } from '../helpers/cli-runner.js';
import { closedPort } from '../helpers/ports.js';
import { tempDirPerTest } from '../helpers/temp-dir.js';

describe('ironlime agent with no registrar at --registrar', function () {
  // Five tries, 1 s doubling between them (15 s of waits), on a machine other helpers load.
  this.timeout(120_000);
  const dir = tempDirPerTest('ironlime-agent-no-registrar-');

  it('exits 2 with one line saying the registrar did not answer and what to check', async function () {
    const registrar = `http://127.0.0.1:${await closedPort()}`;
    const run = await runCli(['agent', '--data-dir', path.join(dir.path, 'node'), '--tpm', 'software', '--port', '0', '--registrar', registrar]);
    expect(run.code).to.equal(2);
    expect(run.stderr).to.match(
      new RegExp(`^ironlime: the registrar did not answer, after 5 tries: ${registrar}/version: unreachable: .*; start it, or point --registrar at its registration port\\n$`),
    );
  });
});
