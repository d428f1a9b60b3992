import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { RoundTimingReport } from '../lib/fleet/round-timing.js';
import { timingPlotSvg } from '../lib/fleet/timing-plot.js';

/** Where `npm run bench -- verifier` leaves its figures (gitignored). */
export const BENCH_OUTPUT_DIR = 'bench-output';

export interface VerifierRunFigures {
  readonly agents: number;
  readonly quoteInterval: number;
  readonly from: number;
  readonly to: number;
  readonly report: RoundTimingReport;
  readonly cpu: string;
  /** The first verifier's rounds per grid slot in the window's first and last stretch (`bench/rounds-per-slot.ts`). */
  readonly roundsPerSlot?: { readonly first: string; readonly last: string };
}

/**
 * Writes one run's figures as `verifier-<agents>-agents.json` and, beside it, the plot of start
 * delays and detection times over the window as `verifier-<agents>-agents.svg`; returns both paths.
 */
export async function writeVerifierRunFiles(run: VerifierRunFigures, dir = BENCH_OUTPUT_DIR): Promise<{ json: string; svg: string }> {
  await mkdir(dir, { recursive: true });
  const base = path.join(dir, `verifier-${run.agents}-agents`);
  const json = `${base}.json`;
  const svg = `${base}.svg`;
  await writeFile(json, `${JSON.stringify(run, null, 2)}\n`);
  const title = `${run.agents} agents, quote_interval ${run.quoteInterval} s: ${run.report.attestationsPerSecond.toFixed(1)} attestations/s, ${run.report.lateRounds} late, ${run.report.detected}/${run.report.tampered} detected`;
  await writeFile(svg, timingPlotSvg(run.report, { title, from: run.from, to: run.to, lateMs: 0.1 * run.quoteInterval * 1000 }));
  return { json, svg };
}
