import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { FileTooLarge, readBoundedFile } from '../../lib/config/read-bounded-file.js';

const MIB = 1024 * 1024;

/**
 * The tenant's bounded reader of operator files: a regular file is refused by its size, a pipe is read
 * in chunks up to the bound — without holding a 1 MiB buffer for each (at most 64 KiB) pipe read.
 */
describe('readBoundedFile', function () {
  let dir: string;
  const writers: ChildProcess[] = [];

  before(function () {
    dir = mkdtempSync(path.join(tmpdir(), 'ironlime-bounded-read-'));
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

  it('refuses a regular file over the bound by its size', async function () {
    const sparse = path.join(dir, 'sparse');
    writeFileSync(sparse, '');
    truncateSync(sparse, 2 * MIB + 1);
    const error = await readBoundedFile(sparse, 2 * MIB).then(() => undefined, (caught: unknown) => caught);
    expect(error).to.be.instanceOf(FileTooLarge);
    expect((error as Error).message).to.equal(`${sparse} is larger than ${2 * MIB} bytes`);
  });

  it('reads a pipe whole, holding about what it read (it held a 1 MiB buffer per 64 KiB read)', async function () {
    const size = 16 * MIB;
    const fifo = pipeOf('policy-pipe', size);
    const before = process.memoryUsage().arrayBuffers;
    const bytes = await readBoundedFile(fifo, 100 * MIB);
    const grown = process.memoryUsage().arrayBuffers - before;
    expect(bytes.length).to.equal(size);
    expect(bytes.every((byte) => byte === 0)).to.equal(true);
    // The bytes, their copy in chunks and the read buffer: some 33 MiB, where 256 MiB were held.
    expect(grown).to.be.below(96 * MIB);
  });

  it('refuses a pipe once it passes the bound', async function () {
    const fifo = pipeOf('long-pipe', 3 * MIB);
    const error = await readBoundedFile(fifo, 2 * MIB).then(() => undefined, (caught: unknown) => caught);
    expect(error).to.be.instanceOf(FileTooLarge);
  });
});
