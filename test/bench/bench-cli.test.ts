import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { expect } from 'chai';
import { pollUntil } from '../../lib/timing/poll-until.js';

const MAIN = path.resolve(import.meta.dirname, '../../bench/main.js');

/** `node dist/bench/main.js <args>`: its exit code (or signal) and stderr once it ends. */
function bench(args: readonly string[]): { child: ReturnType<typeof spawn>; done: Promise<{ code: number | null; signal: string | null; stderr: string }> } {
  const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const done = once(child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as string | null, stderr }));
  return { child, done };
}

/** The child processes of `pid` (read from ps, which only lists them). */
function childrenOf(pid: number): number[] {
  try {
    return execFileSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' }).split('\n').filter((line) => line.trim() !== '').map(Number);
  } catch {
    return [];
  }
}

/**
 * `npm run bench -- verifier`: a SIGTERM ended it with 130 (SIGINT's code), and `--verifiers` took any
 * count (a huge one forked verifier processes without limit).
 */
describe('bench verifier: exit code of a SIGTERM, bound of --verifiers', function () {
  this.timeout(120_000);

  it('refuses --verifiers past its bound, or not an integer, before anything is forked', async () => {
    for (const count of ['1000000', '0', '2.5']) {
      const run = bench(['verifier', '--agents', '2', '--verifiers', count]);
      const { code, stderr } = await run.done;
      expect(code, count).to.not.equal(0);
      expect(stderr, count).to.include('--verifiers: must be an integer from 1 to 32');
    }
  });

  it('a SIGTERM tears the run down and exits 143, as a shell reports SIGTERM (SIGINT stays 130)', async () => {
    const run = bench(['verifier', '--agents', '2', '--seconds', '60', '--warmup', '0']);
    const pid = run.child.pid as number;
    // The verifier's process is forked once the signal handler is in place: the SIGTERM then reaches the bench's own handler.
    await pollUntil({ timeoutMs: 60_000, intervalMs: 100 }, 'the bench forked its verifier', async () => childrenOf(pid).length > 0);
    run.child.kill('SIGTERM');
    const { code, stderr } = await run.done;
    expect(stderr).to.include('interrupted by SIGTERM: verifier processes stopped, schema dropped, data dir removed');
    expect(code).to.equal(143);
  });
});
