import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { expect } from 'chai';
import { BenchmarkUsageError } from '../../bench/benchmark.js';
import { verifierBenchmark } from '../../bench/verifier-bench.js';

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
 * `args` refused by `verifierBenchmark.run` in this process with `message`, before it reaches anything it
 * would start (a schema, a verifier child): each refusal of the command line is a `BenchmarkUsageError`,
 * which `bench/main.ts` prints as one `bench: <message>` line with exit 2, as the one case per suite
 * run as a child process shows.
 */
async function refusedInProcess(args: readonly string[], message: string): Promise<void> {
  const refusal = await verifierBenchmark.run(args).then(
    () => undefined,
    (error: unknown) => error,
  );
  expect(refusal, args.join(' ')).to.be.instanceOf(BenchmarkUsageError);
  expect((refusal as Error).message, args.join(' ')).to.equal(message);
}

/**
 * `npm run bench -- verifier`: `--verifiers` took any count (a huge one forked verifier processes
 * without limit), and an argument refused ended in a stack trace and exit 1. Its exit code on a
 * signal is tested in test/fleet/bench-interrupt.test.ts.
 */
describe('bench verifier: bound of --verifiers', function () {
  this.timeout(120_000);

  it('refuses --verifiers past its bound, or not an integer, before anything is forked: one line, exit 2', async () => {
    const { code, stderr } = await bench(['verifier', '--agents', '2', '--verifiers', '1000000']).done;
    expect(code).to.equal(2);
    // One line, no stack trace.
    expect(stderr).to.equal('bench: --verifiers: must be an integer from 1 to 32\n');
    for (const count of ['1000000', '0', '2.5']) {
      await refusedInProcess(['--agents', '2', '--verifiers', count], '--verifiers: must be an integer from 1 to 32');
    }
  });
});

/** `--heap-profile DIR` samples verifier children (pull, and push with `--push`), never beside the CPU profiler. */
describe('bench verifier: --heap-profile refused where it cannot sample honestly', function () {
  this.timeout(120_000);

  it('refuses it with --in-process, --profile or without a directory, before anything is forked: one line, exit 2', async () => {
    const { code, stderr } = await bench(['verifier', '--agents', '2', '--heap-profile', '/tmp/x', '--in-process']).done;
    expect(code).to.equal(2);
    expect(stderr).to.equal('bench: --heap-profile: not with --in-process or --profile\n');
    const cases: [string[], string][] = [
      [['--heap-profile', '/tmp/x', '--in-process'], '--heap-profile: not with --in-process or --profile'],
      [['--heap-profile', '/tmp/x', '--profile', '/tmp/y'], '--heap-profile: not with --in-process or --profile'],
      [['--heap-profile'], '--heap-profile: needs a directory'],
      [['--heap-profile', '--seconds', '5'], '--heap-profile: needs a directory'],
    ];
    for (const [args, message] of cases) {
      await refusedInProcess(['--agents', '2', ...args], message);
    }
  });
});
