import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect } from 'chai';
import { readRegularFileSync } from '../../lib/files/regular-file.js';
import { REPO_ROOT } from '../helpers/paths.js';
import { tempDirPerTest } from '../helpers/temp-dir.js';

/** How long a read is given before it is taken as hung; generous for a loaded host. */
const HANG_MS = 20_000;

/**
 * `call` (an expression over the module imported as `m`) run in a child, since a synchronous read of a
 * FIFO blocks a whole process: what it threw, as `<name>: <message>`, or 'returned'.
 */
function outcomeInChild(module: string, call: string): string {
  const url = pathToFileURL(path.join(REPO_ROOT, 'dist', module)).href;
  const script = `import(${JSON.stringify(url)}).then((m) => { try { ${call}; process.stdout.write('returned'); } catch (e) { process.stdout.write(e.name + ': ' + e.message); } });`;
  const run = spawnSync(process.execPath, ['-e', script], { timeout: HANG_MS, encoding: 'utf8' });
  expect(run.signal, 'the child hung reading a FIFO and was killed').to.equal(null);
  return run.stdout;
}

/**
 * Files read once at start that a plain readFileSync read: a FIFO in their place held the start for ever
 * (waiting for a writer), and a long file was read whole. Each is now a bounded regular-file read.
 */
describe('files: the files read at start are bounded reads', function () {
  this.timeout(4 * HANG_MS);
  const temp = tempDirPerTest('ironlime-start-files-');

  it('an EK CA folder with a FIFO or an over-long *.pem is refused, naming the file', () => {
    const fifo = path.join(temp.path, 'vendor.pem');
    execFileSync('mkfifo', [fifo]);
    const loading = `m.loadCertStore(${JSON.stringify(temp.path)})`;
    expect(outcomeInChild('lib/pki/cert-store-files.js', loading)).to.equal(`CertificateParseError: certificate: ${fifo} is not a regular file`);
    execFileSync('rm', [fifo]);
    writeFileSync(fifo, '');
    truncateSync(fifo, 4 * 1024 * 1024 + 1);
    expect(outcomeInChild('lib/pki/cert-store-files.js', loading)).to.match(/^CertificateParseError: certificate: .*vendor\.pem holds more than the 4194304 bytes/);
  });

  it('audit verify --public-key naming a FIFO or an over-long file is a FileReadError', () => {
    const fifo = path.join(temp.path, 'audit-public-key.pem');
    execFileSync('mkfifo', [fifo]);
    expect(outcomeInChild('lib/audit/audit-signing-key.js', `m.readAuditPublicKey(${JSON.stringify(fifo)})`)).to.equal(
      `FileReadError: audit public key: ${fifo} is not a regular file`,
    );
    const long = path.join(temp.path, 'long.pem');
    writeFileSync(long, '');
    truncateSync(long, 64 * 1024 + 1);
    expect(outcomeInChild('lib/audit/audit-signing-key.js', `m.readAuditPublicKey(${JSON.stringify(long)})`)).to.match(/^FileReadError: audit public key: .*long\.pem holds more than the 65536 bytes/);
  });

  it('the host id: a FIFO as product_uuid or as the default interface\'s address does not hold the start', () => {
    const dmi = path.join(temp.path, 'sys/class/dmi/id');
    mkdirSync(dmi, { recursive: true });
    const uuid = path.join(dmi, 'product_uuid');
    execFileSync('mkfifo', [uuid]);
    expect(outcomeInChild('lib/identity/read-host-id.js', `m.readHostId('sys-uuid', ${JSON.stringify(temp.path)})`)).to.equal(
      `InvalidParameterValue: host id: ${uuid} is not a regular file`,
    );
    const eth = path.join(temp.path, 'sys/class/net/eth0');
    mkdirSync(eth, { recursive: true });
    execFileSync('mkfifo', [path.join(eth, 'address')]);
    const ens = path.join(temp.path, 'sys/class/net/eth1');
    mkdirSync(ens, { recursive: true });
    writeFileSync(path.join(ens, 'address'), '52:54:00:00:00:07\n');
    // eth0's address cannot be read: passed over, as an unreadable one was.
    expect(outcomeInChild('lib/identity/read-host-id.js', `process.stdout.write(m.readHostId('mac', ${JSON.stringify(temp.path)}).value + ' ')`)).to.equal('52:54:00:00:00:07 returned');
  });

  it('the host id: a product_uuid longer than a sysfs page is refused unread', () => {
    const dmi = path.join(temp.path, 'sys/class/dmi/id');
    mkdirSync(dmi, { recursive: true });
    const uuid = path.join(dmi, 'product_uuid');
    writeFileSync(uuid, '');
    truncateSync(uuid, 4097);
    expect(outcomeInChild('lib/identity/read-host-id.js', `m.readHostId('sys-uuid', ${JSON.stringify(temp.path)})`)).to.equal(
      `InvalidParameterValue: host id: ${uuid} holds more than the 4096 bytes host id may name`,
    );
  });

  it('a real sysfs attribute, which reports one page as its size, is read within the one-page bound', function () {
    const attribute = '/sys/class/net/lo/address';
    if (!existsSync(attribute)) this.skip();
    expect(statSync(attribute).size).to.equal(4096);
    expect(readRegularFileSync(attribute, { setting: 'host id', maxBytes: 4096 }).toString()).to.equal('00:00:00:00:00:00\n');
  });
});
