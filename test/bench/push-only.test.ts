import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { BenchmarkUsageError } from '../../bench/benchmark.js';
import { verifierBenchmark } from '../../bench/verifier-bench.js';

const MAIN = path.resolve(import.meta.dirname, '../../bench/main.js');

/** Runs `bench/main.js verifier` with `args`; resolves to its exit code and standard output. */
async function bench(args: readonly string[]): Promise<{ code: number; stdout: string }> {
  const child = spawn(process.execPath, [MAIN, 'verifier', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.resume();
  const [code] = (await once(child, 'exit')) as [number];
  return { code, stdout };
}

/** `npm run bench -- verifier --push-only`: the push window alone, no pull window before it (issue 13's push A/B). */
describe('bench verifier: --push-only runs the push window without the pull window', function () {
  this.timeout(300_000);

  it('prints a push row, its heap line with --heap-profile, and no pull report', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'ironlime-push-only-'));
    try {
      const { code, stdout } = await bench(['--agents', '2', '--seconds', '3', '--warmup', '0', '--quote-interval', '0.5', '--tamper', '0', '--push-only', '--heap-profile', dir]);
      expect(code, stdout).to.equal(0);
      expect(stdout, stdout).to.match(/^\| 2 \| this build \| \d+\.\d{3} ms \| \d+\.\d \| 0 \| 0 \/ 0 \|$/m);
      expect(stdout, stdout).to.match(/^push heap profile .*: [\d.]+ MiB allocated in the window, [1-9]\d* attestations, \d+\.\d KiB per push attestation$/m);
      // The pull window's report opens with its attestation count.
      expect(stdout).to.not.match(/^attestations: /m);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  // Refused in this process: a BenchmarkUsageError is what bench/main.ts turns into one line and exit 2
  // (test/bench/bench-cli.test.ts runs that as a child); a whole bench process only to read its arguments
  // cost a Node start and the bench's modules.
  it('is refused with --push, before anything starts', async () => {
    const refusal = await verifierBenchmark.run(['--agents', '2', '--push-only', '--push']).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refusal).to.be.instanceOf(BenchmarkUsageError);
    expect((refusal as Error).message).to.equal('--push-only: not with --push, --in-process, --verifiers or --cpu-limit');
  });
});
