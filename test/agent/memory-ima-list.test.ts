import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { sliceImaList } from '../../lib/agent/ima-list-slice.js';
import { MemoryImaList } from '../../lib/agent/memory-ima-list.js';
import { bootEmulatedNode, defaultBootLogPath } from '../../lib/agent/node-emulation.js';
import { createSoftwareTpm } from '../../lib/tpm-access/software/tpm-adapter.js';

const line = (i: number): string => `10 ${i.toString(16).padStart(40, '0')} ima-ng sha256:${'cd'.repeat(32)} /usr/bin/tool-${i}\n`;

describe('agent: IMA list kept in memory by an emulated node', function () {
  /** Every entry from 0 to past the end, and the answer must be `sliceImaList`'s over the same text. */
  function expectSameAsSlice(list: MemoryImaList, text: string): void {
    const lines = sliceImaList(text, 0).totalLines;
    for (let requested = 0; requested <= lines + 2; requested += 1) {
      expect(list.slice(requested), `entry ${requested}`).to.deep.equal(sliceImaList(text, requested));
    }
    expect(list.lineCount()).to.equal(lines);
  }

  it("gives sliceImaList's answer while the list grows by one line, by several, and after it is cleared", function () {
    const list = new MemoryImaList();
    expectSameAsSlice(list, '');
    let text = '';
    for (const batch of [line(0), line(1) + line(2) + line(3), '', line(4), 'é ünïcode path\n']) {
      list.append(batch);
      text += batch;
      expectSameAsSlice(list, text);
    }
    list.clear();
    expectSameAsSlice(list, '');
    list.append(line(9));
    expectSameAsSlice(list, line(9));
  });

  it('refuses a fragment without its "\\n" and keeps what it held', function () {
    const list = new MemoryImaList();
    list.append(line(0));
    expect(() => list.append(line(1).slice(0, 30))).to.throw(/complete lines/);
    expect(list.slice(0)).to.deep.equal(sliceImaList(line(0), 0));
  });

  it('serves, on an in-process TPM, exactly the IMA list and boot log written to and read from the files', async function () {
    const dir = await mkdtemp(path.join(tmpdir(), 'ironlime-memory-ima-'));
    try {
      const tpm = await createSoftwareTpm({ ekAlgorithm: 'ecc' });
      const node = await bootEmulatedNode(tpm, dir, defaultBootLogPath(), undefined);
      await node.measure([{ path: '/usr/bin/a', fileDigest: new Uint8Array(32).fill(1) }]);
      await node.measure([{ path: '/usr/bin/b', fileDigest: new Uint8Array(32).fill(2) }, { path: '/usr/bin/c', fileDigest: new Uint8Array(32).fill(3) }]);
      const text = await readFile(node.imaLogPath, 'utf8');
      for (let requested = 0; requested <= 5; requested += 1) {
        expect(await node.logs.imaList(requested), `entry ${requested}`).to.deep.equal(sliceImaList(text, requested));
      }
      expect(await node.logs.imaLineCount()).to.equal(sliceImaList(text, 0).totalLines);
      expect(await node.logs.bootLogBase64()).to.equal((await readFile(defaultBootLogPath())).toString('base64'));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
