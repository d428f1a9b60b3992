import { appendFileSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { BootLogCache, MAX_BOOT_LOG_BYTES } from '../../lib/agent/boot-log-cache.js';
import { execFileSync } from 'node:child_process';
import { sliceImaList } from '../../lib/agent/ima-list-slice.js';
import { ImaLogReader } from '../../lib/agent/ima-log-reader.js';

const line = (i: number): string => `10 ${i.toString(16).padStart(40, '0')} ima-ng sha256:${'ab'.repeat(32)} /usr/bin/file-${i}\n`;

describe('agent: IMA log read incrementally, boot log encoded once', function () {
  let dir: string;
  let file: string;

  beforeEach(function () {
    dir = mkdtempSync(path.join(tmpdir(), 'ironlime-evidence-files-'));
    file = path.join(dir, 'ascii_runtime_measurements');
  });

  afterEach(function () {
    rmSync(dir, { recursive: true, force: true });
  });

  /** The reader's answer for every entry, and its line count, must be `sliceImaList`'s over the whole file as it is now. */
  async function expectSameAsWholeRead(reader: ImaLogReader, text: string, lines: number): Promise<void> {
    expect(await reader.lineCount(), 'line count').to.equal(sliceImaList(text, 0).totalLines);
    for (let requested = 0; requested <= lines + 2; requested += 1) {
      expect(await reader.slice(requested), `entry ${requested}`).to.deep.equal(sliceImaList(text, requested));
    }
  }

  it("gives sliceImaList's answer while the log grows, a line at a time, in pieces and by 2,000 lines (past one read chunk)", async function () {
    const reader = new ImaLogReader(file);
    let text = line(0);
    writeFileSync(file, text);
    await expectSameAsWholeRead(reader, text, 1);
    // A line still being written is left out until its "\n" is there.
    const next = line(1);
    appendFileSync(file, next.slice(0, 20));
    await expectSameAsWholeRead(reader, `${text}${next.slice(0, 20)}`, 1);
    appendFileSync(file, next.slice(20));
    text += next;
    await expectSameAsWholeRead(reader, text, 2);
    const many = Array.from({ length: 2000 }, (_, i) => line(i + 2)).join('');
    appendFileSync(file, many);
    text += many;
    expect(await reader.slice(1990)).to.deep.equal(sliceImaList(text, 1990));
    expect(await reader.slice(2002)).to.deep.equal({ list: '', entry: 2002, totalLines: 2002 });
    expect(await reader.slice(0)).to.deep.equal(sliceImaList(text, 0));
  });

  it('starts over when the log shrank or is another file, and answers undefined while it is missing', async function () {
    const reader = new ImaLogReader(file);
    writeFileSync(file, line(0) + line(1) + line(2));
    expect((await reader.slice(0))?.totalLines).to.equal(3);
    truncateSync(file, 0);
    writeFileSync(file, line(7));
    await expectSameAsWholeRead(reader, line(7), 1);
    // Replaced by a longer file (a new inode): not taken as the old one grown.
    const replacement = path.join(dir, 'new');
    writeFileSync(replacement, line(8) + line(9) + line(10));
    renameSync(replacement, file);
    await expectSameAsWholeRead(reader, line(8) + line(9) + line(10), 3);
    rmSync(file);
    expect(await reader.slice(0)).to.equal(undefined);
    expect(await reader.lineCount()).to.equal(undefined);
    writeFileSync(file, line(11));
    expect(await reader.slice(0)).to.deep.equal(sliceImaList(line(11), 0));
  });

  it('keeps reading a pseudo-file that reports size 0 (as securityfs does), and starts over when a regular file is emptied', async function () {
    // /proc/filesystems is a seq_file like securityfs's IMA list: size 0 in stat, readable at any offset.
    const pseudo = '/proc/filesystems';
    if (statSync(pseudo).size !== 0) this.skip();
    const reader = new ImaLogReader(pseudo);
    const text = readFileSync(pseudo, 'utf8');
    const lines = sliceImaList(text, 0).totalLines;
    expect(lines).to.be.greaterThan(2);
    await expectSameAsWholeRead(reader, text, lines);
    // Caught up, a further call reads on from the end: no read starts at offset 0 again.
    const handle = await open(pseudo, 'r');
    const prototype = Object.getPrototypeOf(handle) as { read: (...args: unknown[]) => unknown };
    await handle.close();
    const read = prototype.read;
    const readPositions: unknown[] = [];
    prototype.read = function (this: unknown, ...args: unknown[]) {
      readPositions.push(args[3]);
      return read.apply(this, args);
    };
    try {
      expect(await reader.lineCount()).to.equal(lines);
    } finally {
      prototype.read = read;
    }
    expect(readPositions).to.not.include(0);
    expect(readPositions.length).to.be.greaterThan(0);
    await expectSameAsWholeRead(reader, text, lines);

    const emptied = new ImaLogReader(file);
    writeFileSync(file, line(0) + line(1));
    expect(await emptied.lineCount()).to.equal(2);
    truncateSync(file, 0);
    await expectSameAsWholeRead(emptied, '', 0);
  });

  it('serves concurrent requests one after another without counting a line twice', async function () {
    const reader = new ImaLogReader(file);
    const text = Array.from({ length: 50 }, (_, i) => line(i)).join('');
    writeFileSync(file, text);
    const slices = await Promise.all([reader.slice(0), reader.slice(10), reader.slice(50), reader.slice(49)]);
    expect(slices).to.deep.equal([0, 10, 50, 49].map((entry) => sliceImaList(text, entry)));
  });

  it('encodes the boot log once while it stays the same, and again after any change', async function () {
    const bootLog = path.join(dir, 'binary_bios_measurements');
    const cache = new BootLogCache(bootLog);
    expect(await cache.base64()).to.equal(undefined);
    writeFileSync(bootLog, Buffer.from([1, 2, 3, 4]));
    const first = await cache.base64();
    expect(first).to.equal(Buffer.from([1, 2, 3, 4]).toString('base64'));
    expect(await cache.base64()).to.equal(first);
    // Same size, rewritten in place with an older modification time: the change time still moves.
    writeFileSync(bootLog, Buffer.from([9, 9, 9, 9]));
    utimesSync(bootLog, new Date(0), new Date(0));
    expect(await cache.base64()).to.equal(Buffer.from([9, 9, 9, 9]).toString('base64'));
    const replacement = path.join(dir, 'replacement');
    writeFileSync(replacement, Buffer.from([5, 6, 7, 8]));
    renameSync(replacement, bootLog);
    expect(await cache.base64()).to.equal(Buffer.from([5, 6, 7, 8]).toString('base64'));
    appendFileSync(bootLog, Buffer.from([0]));
    expect(await cache.base64()).to.equal(Buffer.from([5, 6, 7, 8, 0]).toString('base64'));
    rmSync(bootLog);
    expect(await cache.base64()).to.equal(undefined);
  });
  it('leaves out a log that is a FIFO or a device, at once (a read of either would never end)', async function () {
    this.timeout(10_000);
    const fifo = path.join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    expect(await new ImaLogReader(fifo).slice(0)).to.equal(undefined);
    expect(await new ImaLogReader('/dev/zero').lineCount()).to.equal(undefined);
    expect(await new BootLogCache(fifo).base64()).to.equal(undefined);
    expect(await new BootLogCache('/dev/zero').base64()).to.equal(undefined);
  });

  it('leaves out a boot log longer than MAX_BOOT_LOG_BYTES, and sends one of exactly that length', async function () {
    const bootLog = path.join(dir, 'binary_bios_measurements');
    writeFileSync(bootLog, Buffer.alloc(MAX_BOOT_LOG_BYTES + 1, 1));
    expect(await new BootLogCache(bootLog).base64()).to.equal(undefined);
    truncateSync(bootLog, MAX_BOOT_LOG_BYTES);
    expect(Buffer.from((await new BootLogCache(bootLog).base64()) ?? '', 'base64').length).to.equal(MAX_BOOT_LOG_BYTES);
  });
});
