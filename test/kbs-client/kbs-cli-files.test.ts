import { execFileSync } from 'node:child_process';
import { closeSync, constants, openSync, readdirSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { EXIT_USAGE } from '../../lib/cli/exit-codes.js';
import { MAX_PEM_FILE_BYTES } from '../../lib/files/regular-file.js';
import { runCli, type CliRun } from '../helpers/cli-runner.js';
import { tempDirPerTest } from '../helpers/temp-dir.js';

/** How long a read of a FIFO is given to give up before it is taken as hung; generous for a loaded host. */
const HANG_MS = 20_000;

/** No broker listens there: a run that got past its files fails on the connection, not on them. */
const NO_BROKER = 'https://127.0.0.1:1';

function getResource(...options: string[]): Promise<CliRun> {
  return runCli(['kbs', 'get-resource', 'kbs:///node/disk-key/u12', '--agent-id', 'node-1', '--tcti', 'swtpm:port=1', ...options]);
}

/**
 * `ironlime kbs get-resource --ca/--issuer-ca` on a node: read with a plain readFile, a FIFO held the
 * command for ever (waiting for a writer), an oversized file was read whole, and either failed after
 * the TPM's work folder was made, which stayed behind. Read as bounded regular files before the TPM is
 * opened, refused in one line naming the option.
 */
describe('kbs get-resource: the CA files it reads', function () {
  this.timeout(4 * HANG_MS);
  const temp = tempDirPerTest('ironlime-kbs-cli-');
  let tmpdirBefore: string | undefined;

  // The TPM's work folder is made under TMPDIR: kept in the test's folder, one left behind is seen.
  beforeEach(() => {
    tmpdirBefore = process.env['TMPDIR'];
    process.env['TMPDIR'] = temp.path;
  });
  afterEach(() => {
    if (tmpdirBefore === undefined) delete process.env['TMPDIR'];
    else process.env['TMPDIR'] = tmpdirBefore;
  });

  function tpmFoldersLeft(): string[] {
    return readdirSync(temp.path).filter((name) => name.startsWith('ironlime-tpm-'));
  }

  it('refuses a FIFO given as --ca at once, in one line naming the option', async () => {
    const fifo = path.join(temp.path, 'ca.fifo');
    execFileSync('mkfifo', [fifo]);
    let timer: NodeJS.Timeout | undefined;
    const hung = new Promise<string>((resolve) => {
      timer = setTimeout(() => resolve('still waiting'), HANG_MS);
    });
    const outcome = await Promise.race([getResource('--url', NO_BROKER, '--ca', fifo), hung]);
    clearTimeout(timer);
    try {
      // A read still waiting on the FIFO ends at end of file instead of holding a pool thread.
      closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
    } catch {
      // ENXIO: no reader is waiting, as it should be.
    }
    expect(outcome).to.deep.equal({ code: EXIT_USAGE, stdout: '', stderr: `ironlime: --ca: ${fifo} is not a regular file\n` });
    expect(tpmFoldersLeft()).to.deep.equal([]);
  });

  it('refuses an --issuer-ca longer than a CA bundle may be, unread, in one line naming the option', async () => {
    const ca = path.join(temp.path, 'ca.crt');
    writeFileSync(ca, '');
    truncateSync(ca, MAX_PEM_FILE_BYTES + 1);
    const run = await getResource('--url', NO_BROKER, '--mode', 'passport', '--issuer-url', NO_BROKER, '--issuer-ca', ca);
    expect(run).to.deep.equal({
      code: EXIT_USAGE,
      stdout: '',
      stderr: `ironlime: --issuer-ca: ${ca} holds more than the ${MAX_PEM_FILE_BYTES} bytes --issuer-ca may name\n`,
    });
    expect(tpmFoldersLeft()).to.deep.equal([]);
  });

  it('refuses a missing --ca in one line, and leaves no TPM work folder when the URL is refused', async () => {
    const missing = path.join(temp.path, 'absent.crt');
    expect(await getResource('--url', NO_BROKER, '--ca', missing)).to.deep.equal({
      code: EXIT_USAGE,
      stdout: '',
      stderr: `ironlime: --ca: cannot read ${missing}: ENOENT\n`,
    });
    const plain = await getResource('--url', 'http://127.0.0.1:1');
    expect(plain.code).to.equal(EXIT_USAGE);
    expect(plain.stderr).to.match(/^ironlime: .*broker URL must be https: http:\/\/127\.0\.0\.1:1\n$/);
    expect(tpmFoldersLeft()).to.deep.equal([]);
  });

  /** `--issuer-ca` without `--issuer-url`, or `--issuer-url` in background mode, was silently ignored. */
  for (const [options, stderr] of [
    [['--mode', 'passport', '--issuer-ca', 'issuer.crt'], 'ironlime: --issuer-ca: needs --issuer-url (without it the issuer is --url, checked against --ca)\n'],
    [['--issuer-url', NO_BROKER], 'ironlime: --issuer-url: works with --mode passport only\n'],
  ] as const) {
    it(`refuses ${options.join(' ')} as a usage error, before any file or the TPM is touched`, async () => {
      expect(await getResource('--url', NO_BROKER, ...options)).to.deep.equal({ code: EXIT_USAGE, stdout: '', stderr });
      expect(tpmFoldersLeft()).to.deep.equal([]);
    });
  }
});
