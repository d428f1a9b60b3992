import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { expect } from 'chai';

const MAIN = path.resolve(import.meta.dirname, '../../bench/main.js');

/** `node dist/bench/main.js <args>`: its exit code (or signal) and stderr once it ends. */
function bench(args: readonly string[]): { child: ReturnType<typeof spawn>; done: Promise<{ code: number | null; signal: string | null; stderr: string }> } {
  const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const done = once(child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as string | null, stderr }));
  return { child, done };
}

/**
 * `npm run bench -- verifier`: `--verifiers` took any count (a huge one forked verifier processes
 * without limit), and an argument refused ended in a stack trace and exit 1. Its exit code on a
 * signal is tested in test/fleet/bench-interrupt.test.ts.
 */
describe('bench verifier: bound of --verifiers', function () {
  this.timeout(120_000);

  it('refuses --verifiers past its bound, or not an integer, before anything is forked: one line, exit 2', async () => {
    for (const count of ['1000000', '0', '2.5']) {
      const run = bench(['verifier', '--agents', '2', '--verifiers', count]);
      const { code, stderr } = await run.done;
      expect(code, count).to.equal(2);
      // One line, no stack trace.
      expect(stderr, count).to.equal('bench: --verifiers: must be an integer from 1 to 32\n');
    }
  });
});

/** `--heap-profile DIR` samples verifier children (pull, and push with `--push`), never beside the CPU profiler. */
describe('bench verifier: --heap-profile refused where it cannot sample honestly', function () {
  this.timeout(120_000);

  it('refuses it with --in-process, --profile or without a directory, before anything is forked: one line, exit 2', async () => {
    const cases: [string[], string][] = [
      [['--heap-profile', '/tmp/x', '--in-process'], '--heap-profile: not with --in-process or --profile'],
      [['--heap-profile', '/tmp/x', '--profile', '/tmp/y'], '--heap-profile: not with --in-process or --profile'],
      [['--heap-profile'], '--heap-profile: needs a directory'],
      [['--heap-profile', '--seconds', '5'], '--heap-profile: needs a directory'],
    ];
    for (const [args, message] of cases) {
      const { code, stderr } = await bench(['verifier', '--agents', '2', ...args]).done;
      expect(code, args.join(' ')).to.equal(2);
      expect(stderr, args.join(' ')).to.equal(`bench: ${message}\n`);
    }
  });
});
