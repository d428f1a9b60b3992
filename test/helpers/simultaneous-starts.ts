import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const PROCESSES = 6;
const ROUNDS = 6;
/** How long before its start a child stops sleeping and spins on the clock. */
const SPIN_MS = 20;

/**
 * A child's wait for its start (`at`, in its module's scope): asleep until SPIN_MS before it, then a
 * busy loop to the millisecond. Spinning for the whole lead kept six processes on two cores busy for
 * about 1.5 s each round, seconds of CPU the rest of the suite waited for; the start is as sharp.
 */
export const WAIT_FOR_START = `await new Promise((resolve) => setTimeout(resolve, Math.max(0, at - ${SPIN_MS} - Date.now())));
while (Date.now() < at) {}`;

/**
 * Six rounds of six processes starting at once on one fresh data dir (`dirPrefix`): each runs `child`
 * (an ES module given the dir and the wall-clock millisecond to start at, which prints one JSON line),
 * and `check` judges the round's parsed lines and the dir before it is removed.
 */
export async function startTogetherOnOneDir<T>(dirPrefix: string, child: string, check: (results: T[], dir: string, round: number) => Promise<void>): Promise<void> {
  for (let round = 0; round < ROUNDS; round += 1) {
    const dir = await mkdtemp(path.join(tmpdir(), dirPrefix));
    try {
      const at = Date.now() + 1500;
      const outputs = await Promise.all(Array.from({ length: PROCESSES }, () => run(process.execPath, ['--input-type=module', '-e', child, dir, String(at)])));
      await check(
        outputs.map(({ stdout }) => JSON.parse(stdout) as T),
        dir,
        round,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
}
