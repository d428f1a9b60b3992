import 'reflect-metadata';
import { BenchmarkInterrupted, BenchmarkUsageError, type Benchmark } from './benchmark.js';
import { bootLogBenchmark } from './boot-log-bench.js';
import { brokerBenchmark } from './broker-bench.js';
import { dashboardBenchmark } from './dashboard-bench.js';
import { evidenceBenchmark } from './evidence-bench.js';
import { imaBenchmark } from './ima-bench.js';
import { matchEstimateBenchmark } from './match-estimate-bench.js';
import { pushHttp2Benchmark } from './push-http2-bench.js';
import { roundBenchmark } from './round-bench.js';
import { tpmBenchmark } from './tpm-bench.js';
import { verdictWriteBenchmark } from './verdict-write-bench.js';
import { verifierBenchmark } from './verifier-bench.js';

/** Every benchmark, registered from a file of its own in this folder. */
const BENCHMARKS: readonly Benchmark[] = [imaBenchmark, tpmBenchmark, verifierBenchmark, evidenceBenchmark, brokerBenchmark, dashboardBenchmark, roundBenchmark, verdictWriteBenchmark, matchEstimateBenchmark, pushHttp2Benchmark, bootLogBenchmark];

async function runBenchmarks(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  const chosen = name === undefined ? BENCHMARKS : BENCHMARKS.filter((b) => b.name === name);
  if (chosen.length === 0) {
    const known = BENCHMARKS.map((b) => `${b.name} (${b.description})`).join(', ');
    process.stderr.write(`unknown benchmark "${name ?? ''}"; known: ${known || 'none'}\n`);
    return 2;
  }
  for (const benchmark of chosen) {
    process.stdout.write(`== ${benchmark.name}: ${benchmark.description}\n`);
    await benchmark.run(rest);
  }
  return 0;
}

try {
  process.exitCode = await runBenchmarks(process.argv.slice(2));
} catch (error) {
  if (error instanceof BenchmarkUsageError) {
    process.stderr.write(`bench: ${error.message}\n`);
    process.exitCode = 2;
  } else if (error instanceof BenchmarkInterrupted) {
    process.stderr.write(`${error.message}\n`);
    process.exitCode = error.exitCode;
  } else {
    throw error;
  }
}
