import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { FileReadError, readRegularFile, readRegularFileSync, withRegularFile } from '../../lib/files/regular-file.js';
import { rejectionOf } from '../helpers/rejection.js';
import { tempDirPerTest } from '../helpers/temp-dir.js';

/**
 * The one reader of files a setting names: opened without blocking, a regular file only (checked on
 * the open descriptor), read from that descriptor in chunks up to a bound.
 */
describe('files: reading a regular file a setting names', () => {
  const temp = tempDirPerTest('ironlime-regular-file-');
  const setting = 'test.file';

  it('reads a regular file of up to the bound, and refuses one byte more, naming the file and the setting', async () => {
    const file = path.join(temp.path, 'ten.txt');
    writeFileSync(file, '0123456789');
    expect((await readRegularFile(file, { setting, maxBytes: 10 })).toString()).to.equal('0123456789');
    expect(readRegularFileSync(file, { setting, maxBytes: 10 }).toString()).to.equal('0123456789');
    const error = await rejectionOf(readRegularFile(file, { setting, maxBytes: 9 }), FileReadError);
    expect([error.fault, error.file, error.setting]).to.deep.equal(['too-large', file, setting]);
    expect(error.message).to.equal(`test.file: ${file} holds more than the 9 bytes test.file may name`);
    expect(() => readRegularFileSync(file, { setting, maxBytes: 9 })).to.throw(FileReadError).with.property('fault', 'too-large');
  });

  it('reads a file longer than one chunk whole, and an empty one', async () => {
    const file = path.join(temp.path, 'big.bin');
    const content = Buffer.alloc(200_000, 7);
    content[199_999] = 9;
    writeFileSync(file, content);
    expect((await readRegularFile(file, { setting, maxBytes: 200_000 })).equals(content)).to.equal(true);
    expect(readRegularFileSync(file, { setting, maxBytes: 200_000 }).equals(content)).to.equal(true);
    expect((await rejectionOf(readRegularFile(file, { setting, maxBytes: 199_999 }), FileReadError)).fault).to.equal('too-large');
    const empty = path.join(temp.path, 'empty');
    writeFileSync(empty, '');
    expect((await readRegularFile(empty, { setting, maxBytes: 0 })).length).to.equal(0);
  });

  it('refuses a FIFO at once, without waiting for a writer (async and sync)', async function () {
    this.timeout(20_000);
    const fifo = path.join(temp.path, 'file.fifo');
    execFileSync('mkfifo', [fifo]);
    const error = await rejectionOf(readRegularFile(fifo, { setting, maxBytes: 100 }), FileReadError);
    expect([error.fault, error.detail]).to.deep.equal(['not-regular', `${fifo} is not a regular file`]);
    expect(() => readRegularFileSync(fifo, { setting, maxBytes: 100 })).to.throw(FileReadError).with.property('fault', 'not-regular');
    expect((await rejectionOf(withRegularFile(fifo, setting, async () => 'used'), FileReadError)).fault).to.equal('not-regular');
  });

  it('refuses a device (/dev/zero) instead of reading it until memory runs out', async () => {
    const error = await rejectionOf(readRegularFile('/dev/zero', { setting, maxBytes: 100 }), FileReadError);
    expect(error.message).to.equal('test.file: /dev/zero is not a regular file');
    expect(() => readRegularFileSync('/dev/zero', { setting, maxBytes: 100 })).to.throw(FileReadError).with.property('fault', 'not-regular');
    expect((await rejectionOf(readRegularFile(temp.path, { setting, maxBytes: 100 }), FileReadError)).fault).to.equal('not-regular');
  });

  it('names an absent file with its errno code', async () => {
    const absent = path.join(temp.path, 'absent');
    const error = await rejectionOf(readRegularFile(absent, { setting, maxBytes: 100 }), FileReadError);
    expect([error.fault, error.code, error.detail]).to.deep.equal(['unreadable', 'ENOENT', `cannot read ${absent}: ENOENT`]);
    expect(() => readRegularFileSync(absent, { setting, maxBytes: 100 })).to.throw(FileReadError).with.property('code', 'ENOENT');
  });

  it('reads a pseudo-file that reports size 0 by reading, not by its size', async () => {
    // procfs, like securityfs, reports 0 bytes for a file that holds text.
    const text = (await readRegularFile('/proc/self/status', { setting, maxBytes: 1024 * 1024 })).toString();
    expect(text).to.match(/^Name:/);
    expect((await rejectionOf(readRegularFile('/proc/self/status', { setting, maxBytes: 5 }), FileReadError)).fault).to.equal('too-large');
  });

  it("runs the caller's check on the opened file's status, and lets what it throws through", async () => {
    const file = path.join(temp.path, 'checked');
    writeFileSync(file, 'x', { mode: 0o644 });
    const refusal = new Error('mode refused');
    const error = await rejectionOf(readRegularFile(file, { setting, maxBytes: 10, check: (info) => { if ((info.mode & 0o077) !== 0) throw refusal; } }), Error);
    expect(error).to.equal(refusal);
    expect(() => readRegularFileSync(file, { setting, maxBytes: 10, check: () => { throw refusal; } })).to.throw(refusal);
  });
});
