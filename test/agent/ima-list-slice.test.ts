import { expect } from 'chai';
import fc from 'fast-check';
import { sliceImaList } from '../../lib/agent/ima-list-slice.js';

// Three ima-ng lines as the kernel writes them (PCR, template hash, template name, file digest, path).
const LINES = [
  '10 1d8d532d463c9f8c205d0df7787669a85f93e260 ima-ng sha256:8b0b4e2a boot_aggregate\n',
  '10 6b7a3a4ac8c8ad8ef5ac2f0d9a3a5e6b1c2d3e4f ima-ng sha256:00aa11bb /usr/bin/bash\n',
  '10 0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c ima-ng sha256:ccdd0011 /usr/bin/evil\n',
];
const LOG = LINES.join('');

describe('agent: IMA list slicing (Keylime ima_ml_entry rules)', function () {
  it('returns the lines from the requested entry on, echoing the entry', function () {
    expect(sliceImaList(LOG, 0)).to.deep.equal({ list: LOG, entry: 0, totalLines: 3 });
    expect(sliceImaList(LOG, 1)).to.deep.equal({ list: LINES[1]! + LINES[2]!, entry: 1, totalLines: 3 });
    expect(sliceImaList(LOG, 2)).to.deep.equal({ list: LINES[2], entry: 2, totalLines: 3 });
  });

  it('returns "" with the same entry when nothing is new (entry = number of lines)', function () {
    expect(sliceImaList(LOG, 3)).to.deep.equal({ list: '', entry: 3, totalLines: 3 });
  });

  it('returns the whole log from entry 0 when the entry is past the end (the log restarted)', function () {
    expect(sliceImaList(LOG, 4)).to.deep.equal({ list: LOG, entry: 0, totalLines: 3 });
    expect(sliceImaList(LOG, 1_000_000)).to.deep.equal({ list: LOG, entry: 0, totalLines: 3 });
  });

  it('leaves out a trailing line still being written (no "\\n" yet)', function () {
    const partial = `${LOG}10 abcdef ima-ng sha256:1234 /usr/bi`;
    expect(sliceImaList(partial, 0)).to.deep.equal({ list: LOG, entry: 0, totalLines: 3 });
    expect(sliceImaList(partial, 3)).to.deep.equal({ list: '', entry: 3, totalLines: 3 });
    expect(sliceImaList(partial, 4)).to.deep.equal({ list: LOG, entry: 0, totalLines: 3 });
  });

  it('handles an empty log: entry 0 is "nothing new", anything above restarts at 0', function () {
    expect(sliceImaList('', 0)).to.deep.equal({ list: '', entry: 0, totalLines: 0 });
    expect(sliceImaList('', 5)).to.deep.equal({ list: '', entry: 0, totalLines: 0 });
  });

  it('always returns whole lines whose concatenation with the skipped ones is the complete log', function () {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: 'grapheme-ascii' }).map((s) => s.replace(/\n/g, ' ')), { maxLength: 20 }), fc.nat(25), (lines, requested) => {
        const text = lines.map((line) => `${line}\n`).join('');
        const slice = sliceImaList(text, requested);
        const skipped = lines.slice(0, slice.entry).map((line) => `${line}\n`).join('');
        expect(slice.totalLines).to.equal(lines.length);
        expect(skipped + slice.list).to.equal(text);
        expect(slice.entry).to.equal(requested <= lines.length ? requested : 0);
      }),
    );
  });
});
