import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { missingSwtpmProgram, startNodeTpms } from '../../lib/demo/node-tpms.js';

/** Pids of the processes whose command line mentions `text` (swtpm runs with its state folder in its arguments). */
function pidsMentioning(text: string): number[] {
  const listing = execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' });
  return listing
    .split('\n')
    .filter((line) => line.includes(text) && !line.includes('ps -eo'))
    .map((line) => Number(line.trim().split(/\s+/)[0]));
}

/**
 * The demo's swtpm TPMs start in parallel after the first. When one failed, the start gave up at
 * once and stopped the swtpm processes started so far, while the others were still starting: those
 * came up afterwards and were never stopped.
 */
describe('demo: swtpm TPMs when one of them cannot start', function () {
  this.timeout(180_000);
  let dir: string;

  beforeEach(function () {
    if (missingSwtpmProgram() !== undefined) this.skip();
    dir = mkdtempSync(path.join(tmpdir(), 'ironlime-demo-tpms-'));
  });

  afterEach(function () {
    if (dir === undefined) return;
    // Only after a failed run: the processes this test left behind, by pid.
    for (const pid of pidsMentioning(dir)) process.kill(pid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('fails, and leaves no swtpm process running', async function () {
    // TPM 2's state folder cannot be made: a file has its name. TPMs 1 and 3 are starting meanwhile.
    writeFileSync(path.join(dir, 'swtpm-2'), 'in the way');
    let failure: unknown;
    await startNodeTpms('swtpm', 4, dir).then(
      (tpms) => tpms.close(),
      (error: unknown) => (failure = error),
    );
    expect(failure).to.be.instanceOf(Error);
    // The start has settled: whatever is still running now was left behind. A sibling left starting
    // is seen at once (its swtpm_setup names the folder too); it is given a while to come up as well.
    const deadline = Date.now() + 5_000;
    while (Date.now() < deadline && pidsMentioning(dir).length === 0) {
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    expect(pidsMentioning(dir), 'swtpm processes left running').to.deep.equal([]);
  });
});
