import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { FileReadError, readFileOrPipe } from '../../lib/files/regular-file.js';
import { rejectionOf } from '../helpers/rejection.js';

const MIB = 1024 * 1024;
const setting = '--runtime-policy';

/**
 * The tenant's reader of its own options' files: a regular file is refused by its size, a pipe or a
 * device is read in chunks up to the bound — without holding a 1 MiB buffer for each (at most 64 KiB) pipe read.
 */
describe('files: reading a file or a pipe an operator names', function () {
  let dir: string;
  const writers: ChildProcess[] = [];

  before(function () {
    dir = mkdtempSync(path.join(tmpdir(), 'ironlime-file-or-pipe-'));
  });

  after(function () {
    writers.forEach((writer) => writer.kill());
    rmSync(dir, { recursive: true, force: true });
  });

  /** A named pipe that a child process fills with `bytes` zero bytes. */
  const pipeOf = (name: string, bytes: number): string => {
    const fifo = path.join(dir, name);
    execFileSync('mkfifo', [fifo]);
    const writer = spawn('sh', ['-c', `head -c ${bytes} /dev/zero > '${fifo}'`], { stdio: 'ignore' });
    writer.on('error', () => undefined);
    writers.push(writer);
    return fifo;
  };

  it('reads a regular file, and refuses one over the bound by its size', async function () {
    const small = path.join(dir, 'small');
    writeFileSync(small, 'policy');
    expect((await readFileOrPipe(small, { setting, maxBytes: 6 })).toString()).to.equal('policy');
    const sparse = path.join(dir, 'sparse');
    writeFileSync(sparse, '');
    truncateSync(sparse, 2 * MIB + 1);
    const error = await rejectionOf(readFileOrPipe(sparse, { setting, maxBytes: 2 * MIB }), FileReadError);
    expect([error.fault, error.setting, error.file]).to.deep.equal(['too-large', setting, sparse]);
  });

  it('reads a pipe whole, holding about what it read (it held a 1 MiB buffer per 64 KiB read)', async function () {
    const size = 16 * MIB;
    const fifo = pipeOf('policy-pipe', size);
    const before = process.memoryUsage().arrayBuffers;
    const bytes = await readFileOrPipe(fifo, { setting, maxBytes: 100 * MIB });
    const grown = process.memoryUsage().arrayBuffers - before;
    expect(bytes.length).to.equal(size);
    expect(bytes.every((byte) => byte === 0)).to.equal(true);
    // The bytes and their copy in chunks: some 32 MiB, where 256 MiB were held.
    expect(grown).to.be.below(96 * MIB);
  });

  it('refuses a pipe, and /dev/zero, once past the bound', async function () {
    const fifo = pipeOf('long-pipe', 3 * MIB);
    expect((await rejectionOf(readFileOrPipe(fifo, { setting, maxBytes: 2 * MIB }), FileReadError)).fault).to.equal('too-large');
    expect((await rejectionOf(readFileOrPipe('/dev/zero', { setting, maxBytes: 2 * MIB }), FileReadError)).fault).to.equal('too-large');
  });

  it('reads a process substitution (`--runtime-policy <(generate-policy)`)', function () {
    const reader = path.resolve(import.meta.dirname, '../../lib/files/regular-file.js');
    const script = `const { readFileOrPipe } = await import(${JSON.stringify(reader)}); `
      + `process.stdout.write(await readFileOrPipe(process.argv[1], { setting: 'p', maxBytes: 100 }));`;
    const out = execFileSync('bash', ['-c', 'node --input-type=module -e "$1" <(printf generated-policy)', 'bash', script], { encoding: 'utf8' });
    expect(out).to.equal('generated-policy');
  });

  it('refuses a folder, naming the setting', async function () {
    const error = await rejectionOf(readFileOrPipe(dir, { setting, maxBytes: MIB }), FileReadError);
    expect([error.fault, error.message]).to.deep.equal(['not-regular', `${setting}: ${dir} is not a file, a pipe or a character device`]);
  });
});
