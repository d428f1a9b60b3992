import { X509Certificate } from 'node:crypto';
import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { runCli } from '../helpers/cli-runner.js';
import { DAY_MS, datedCa, writeCaFolder } from './dated-ca.js';

async function run(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const result = await runCli(args);
  return { code: result.code, out: result.stdout, err: result.stderr };
}

describe('cli: ironlime ca', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'ironlime-ca-cli-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('init creates the CA once; issue writes a server certificate with repeated --san', async () => {
    const caDir = path.join(dir, 'ca');
    expect(await run('ca', 'init', '--dir', caDir)).to.deep.equal({ code: 0, out: `created CA: ${caDir}/cacert.crt\n`, err: '' });
    expect((await run('ca', 'init', '--dir', caDir)).out).to.equal(`CA already present: ${caDir}/cacert.crt\n`);
    const issued = await run('ca', 'issue', '--dir', caDir, '--name', 'verifier', '--type', 'server', '--san', '10.1.1.1', '--san', 'v.example');
    expect(issued.code).to.equal(0);
    expect(issued.out).to.equal(`certificate: ${caDir}/verifier-cert.crt\nprivate key: ${caDir}/verifier-private.pem\n`);
    const cert = new X509Certificate(await readFile(path.join(caDir, 'verifier-cert.crt')));
    expect(cert.subjectAltName).to.match(/^IP Address:10\.1\.1\.1, DNS:v\.example, DNS:localhost/);
  });

  it('issue waits for the issue lock a running service holds to renew the same name, and takes it', async () => {
    const caDir = path.join(dir, 'ca');
    await run('ca', 'init', '--dir', caDir);
    const lock = path.join(caDir, 'verifier.lock');
    await writeFile(lock, 'a service renewing verifier');
    const issuing = run('ca', 'issue', '--dir', caDir, '--name', 'verifier', '--type', 'server');
    let ended = false;
    void issuing.finally(() => (ended = true));
    await new Promise((resolve) => setTimeout(resolve, 1000));
    // Without the lock the key and certificate are written at once, beside a service writing its own pair.
    // Nothing but the lock's release ends the wait (a fresh lock is taken for stale only after 20 s), so a
    // CI host that stalls this process cannot make these fail; it can only make them prove less.
    expect(await access(path.join(caDir, 'verifier-cert.crt')).then(() => 'written', () => 'not yet'), 'while the lock is held').to.equal('not yet');
    expect(ended, 'the issue still waits (it neither wrote nor gave up)').to.equal(false);
    await rm(lock);
    expect((await issuing).code).to.equal(0);
    await access(path.join(caDir, 'verifier-cert.crt'));
    expect(await access(lock).then(() => 'left', () => 'removed'), 'its own lock').to.equal('removed');
  });

  it('exits 2 for a bad --type and for a missing CA', async () => {
    const badType = await run('ca', 'issue', '--dir', dir, '--name', 'x', '--type', 'bogus');
    expect(badType.code).to.equal(2);
    expect(badType.err).to.include("argument 'bogus' is invalid. Allowed choices are server, client.");
    const noCa = await run('ca', 'issue', '--dir', dir, '--name', 'x', '--type', 'client');
    expect(noCa).to.deep.equal({ code: 2, out: '', err: `ironlime: no CA in ${dir} (create one with \`ironlime ca init --dir ${dir}\`)\n` });
  });

  it('exits 2 saying there is no CA, and how to make one, for a folder that does not exist', async () => {
    const missing = path.join(dir, 'not-made');
    const noFolder = await run('ca', 'issue', '--dir', missing, '--name', 'admin', '--type', 'client');
    expect(noFolder).to.deep.equal({ code: 2, out: '', err: `ironlime: no CA in ${missing} (create one with \`ironlime ca init --dir ${missing}\`)\n` });
  });

  it('init warns on stderr of a CA with less than 30 days left, and refuses an expired one', async () => {
    const caDir = path.join(dir, 'ca');
    await writeCaFolder(caDir, datedCa(Date.now() - DAY_MS, Date.now() + 10 * DAY_MS));
    const ending = await run('ca', 'init', '--dir', caDir);
    expect(ending.code).to.equal(0);
    expect(ending.err).to.match(/^ironlime: warning: CA .*cacert\.crt expires on .* days left\)/);
    await writeCaFolder(caDir, datedCa(Date.now() - 400 * DAY_MS, Date.now() - DAY_MS));
    const expired = await run('ca', 'init', '--dir', caDir);
    expect(expired.code).to.equal(2);
    expect(expired.err).to.match(/cacert\.crt expired on .*; create a new one with `ironlime ca init/);
  });
});
