import path from 'node:path';
import { generate } from './ima-bench.js';

/**
 * `node dist/bench/ima-compare.js <old repo> <new repo> [pairs] [entries]`: the `ima` bench's first
 * round (50,000 ima-ng lines, a policy listing every path, a sha256 quote covering every line) with
 * two builds' `verifyImaList` (each repo's `dist/`, compiled), alternated in one process, so that the
 * machine's load falls on both alike: median CPU µs/entry of each and the median of new ÷ old per
 * pair. Each build compiles the same policy with its own code. Not registered in bench/main.ts:
 * it needs two builds.
 */

type VerifyModule = typeof import('../lib/ima/verify-ima-list.js');
type CompileModule = typeof import('../lib/ima/compiled-policy.js');
type PolicyModule = typeof import('../lib/ima/runtime-policy.js');

interface Build {
  readonly verify: VerifyModule['verifyImaList'];
  readonly policy: ReturnType<CompileModule['compileRuntimePolicy']>;
}

async function loadBuild(repo: string, policyData: unknown): Promise<Build> {
  const lib = path.resolve(repo, 'dist', 'lib', 'ima');
  const verify = (await import(path.join(lib, 'verify-ima-list.js'))) as VerifyModule;
  const compile = (await import(path.join(lib, 'compiled-policy.js'))) as CompileModule;
  const policy = (await import(path.join(lib, 'runtime-policy.js'))) as PolicyModule;
  return { verify: verify.verifyImaList, policy: compile.compileRuntimePolicy(policy.parseRuntimePolicy(policyData)) };
}

function median(values: readonly number[]): number {
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;
}

async function main(args: readonly string[]): Promise<number> {
  const [oldRepo, newRepo, pairsArg, entriesArg] = args;
  if (oldRepo === undefined || newRepo === undefined) {
    process.stderr.write('usage: node dist/bench/ima-compare.js <old repo> <new repo> [pairs] [entries]\n');
    return 2;
  }
  const pairs = Number(pairsArg ?? 15);
  const count = Number(entriesArg ?? 50_000);
  const list = generate(count);
  const data: unknown = JSON.parse(JSON.stringify(list.policyData));
  const builds = [await loadBuild(oldRepo, data), await loadBuild(newRepo, data)] as const;
  const quotedPcr10 = { bank: 'sha256' as const, value: builds[0].verify({ listText: list.text }).pcr10.sha256 ?? '' };
  const round = (build: Build): number => {
    const start = process.cpuUsage();
    const result = build.verify({ listText: list.text, startEntry: 0, policy: build.policy, quotedPcr10 });
    const used = process.cpuUsage(start);
    if (!result.valid) {
      throw new Error(`benchmark list failed: ${JSON.stringify(result.failures[0])}`);
    }
    return (used.user + used.system) / count;
  };
  for (let i = 0; i < 3; i++) {
    round(builds[0]);
    round(builds[1]);
  }
  const olds: number[] = [];
  const news: number[] = [];
  const ratios: number[] = [];
  for (let i = 0; i < pairs; i++) {
    const old = round(builds[0]);
    const now = round(builds[1]);
    olds.push(old);
    news.push(now);
    ratios.push(now / old);
  }
  process.stdout.write(
    `first round, ${count} entries, ${pairs} pairs alternated in one process: old ${median(olds).toFixed(2)}, new ${median(news).toFixed(2)} µs CPU/entry; ` +
      `new/old per pair: median ${median(ratios).toFixed(3)}, min ${Math.min(...ratios).toFixed(3)}, max ${Math.max(...ratios).toFixed(3)}\n`,
  );
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
