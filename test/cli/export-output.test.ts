import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { ExportOutput } from '../../lib/cli/export-output.js';

describe('ExportOutput to a file: replaced only when complete, nothing left by a stopped export', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(path.join(tmpdir(), 'ironlime-export-output-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('an export stopped at once (before its file was even opened) leaves the earlier file and no partial one', async () => {
    const file = path.join(dir, 'export.jsonl');
    writeFileSync(file, 'earlier\n');
    await ExportOutput.toFile(file).discard();
    await sleep(100);
    expect(readdirSync(dir)).to.deep.equal(['export.jsonl']);
    expect(readFileSync(file, 'utf8')).to.equal('earlier\n');
  });

  it('an export stopped after some lines leaves the earlier file; a finished one replaces it', async () => {
    const file = path.join(dir, 'export.jsonl');
    writeFileSync(file, 'earlier\n');
    const stopped = ExportOutput.toFile(file);
    await stopped.write('a\n');
    await stopped.discard();
    expect(readdirSync(dir)).to.deep.equal(['export.jsonl']);
    expect(readFileSync(file, 'utf8')).to.equal('earlier\n');
    const done = ExportOutput.toFile(file);
    await done.write('a\n');
    await done.finish('manifest\n');
    expect(readdirSync(dir)).to.deep.equal(['export.jsonl']);
    expect(readFileSync(file, 'utf8')).to.equal('a\nmanifest\n');
  });

  it("a partial file left by a killed export of the same pid (a container's pid 1) neither stops the next export nor is removed by it", async () => {
    const file = path.join(dir, 'export.jsonl');
    const left = `${file}.partial-${process.pid}`;
    writeFileSync(left, 'killed\n');
    const done = ExportOutput.toFile(file);
    await done.write('a\n');
    await done.finish('manifest\n');
    expect(readFileSync(file, 'utf8')).to.equal('a\nmanifest\n');
    expect(readFileSync(left, 'utf8')).to.equal('killed\n');
    await ExportOutput.toFile(file).discard();
    expect(readdirSync(dir).sort()).to.deep.equal(['export.jsonl', path.basename(left)]);
  });

  it('a named pipe (as /dev/stdout or /dev/fd/3) is written as it is, not replaced by a regular file its reader never sees', async () => {
    const fifo = path.join(dir, 'export.fifo');
    execFileSync('mkfifo', [fifo]);
    const reader = readFile(fifo, 'utf8');
    const out = ExportOutput.toFile(fifo);
    await out.write('a\n');
    await out.finish('manifest\n');
    expect(statSync(fifo).isFIFO()).to.equal(true);
    expect(await reader).to.equal('a\nmanifest\n');
    expect(readdirSync(dir)).to.deep.equal(['export.fifo']);
  });
});
