import { readMetricsText } from './rounds-per-slot.js';

/**
 * `--builds A,B`: one verifier process per build (each checkout's own `dist/bench/main.js`) on one
 * schema, splitting one fleet through the leases, so every build is measured in the same seconds on
 * the same host. On this shared machine the host's speed moves by up to 2× from hour to hour, more than
 * most changes do; builds run one after the other cannot be told apart, builds run side by side can.
 * Each process's CPU is divided by the rounds it decided in the window (its own `/metrics`).
 */
export interface BuildReading {
  readonly cpuSeconds: number;
  readonly rounds: number;
}

const ROUNDS = /^ironlime_verifier_rounds_total\{outcome="(pass|fail)"\} (\d+)$/gm;

/** Pass and fail rounds a verifier has decided so far (retries and rounds without a verdict left out, as the bench's count does). */
export async function decidedRounds(verifierUrl: string, dataDir: string): Promise<number> {
  const text = await readMetricsText(verifierUrl, dataDir);
  let total = 0;
  for (const [, , count] of text.matchAll(ROUNDS)) total += Number(count);
  return total;
}

/** One line per build: rounds decided in the window and CPU per round, then each build's cost against the first's. */
export function describeBuilds(builds: readonly string[], before: readonly BuildReading[], after: readonly BuildReading[]): string {
  const perRound = builds.map((_, i) => {
    const cpu = (after[i]?.cpuSeconds ?? 0) - (before[i]?.cpuSeconds ?? 0);
    const rounds = (after[i]?.rounds ?? 0) - (before[i]?.rounds ?? 0);
    return { cpu, rounds, ms: rounds === 0 ? Number.NaN : (cpu * 1000) / rounds };
  });
  const first = perRound[0]?.ms ?? Number.NaN;
  return builds
    .map((build, i) => {
      const { cpu, rounds, ms } = perRound[i] as { cpu: number; rounds: number; ms: number };
      return `build ${i} ${build}: ${rounds} rounds, ${cpu.toFixed(2)} s of CPU, ${ms.toFixed(3)} ms per round (${(ms / first).toFixed(3)}× build 0)\n`;
    })
    .join('');
}
