import { mkdir, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import path from 'node:path';
import type { Percentiles, RoundTimingReport } from '../lib/fleet/round-timing.js';
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

/** One pull window's figures as `printReport` prints them. */
export interface PrintedRun {
  readonly agents: number;
  readonly quoteInterval: number;
  readonly seconds: number;
  readonly inProcess: boolean;
  readonly setupSeconds: number;
  /** The event id a tampering must be detected with. */
  readonly expectedEvent: string;
  readonly report: RoundTimingReport;
  readonly cpu: string;
  /** `--cpu-limit`: each verifier process's cap, in per cent of one core. */
  readonly cpuLimitPercent?: number | undefined;
  /** The simulated TPMs' AK family. */
  readonly akAlgorithm: 'ecc' | 'rsa';
}

/** Prints one window's figures and whether it met the targets (no late rounds, p99 detection under 4 s). */
export function printReport(run: PrintedRun): void {
  const { agents, report } = run;
  const ideal = agents / run.quoteInterval;
  const lines = [
    `-- ${agents} agents, quote_interval ${run.quoteInterval} s, window ${run.seconds} s, verifier ${run.inProcess ? 'in-process' : 'in a child process'}${run.cpuLimitPercent === undefined ? '' : ` capped at ${run.cpuLimitPercent} % of a core`} on PostgreSQL, ${run.akAlgorithm === 'rsa' ? 'RSA-2048 AKs (RSASSA)' : 'P-256 AKs (ECDSA)'} (fleet set up in ${run.setupSeconds.toFixed(0)} s)`,
    `attestations: ${report.attestations} = ${report.attestationsPerSecond.toFixed(1)}/s (one per agent per interval would be at most ${ideal.toFixed(1)}/s)`,
    `late rounds (start > 10% of quote_interval after due): ${lateText(report)}; start delay p50 / p99 / max: ${ms(report.startDelayMs)}; untimed ${report.untimedRounds}; agents overdue at the window's end ${report.overdueAgents}`,
    `tampered ${report.tampered}: detected ${report.detected} with ${run.expectedEvent}; tamper → verdict p50 / p99 / max: ${ms(report.detectionMs)}`,
    `failures of untampered agents: ${report.unexpectedFailures}${report.unexpectedEvents.length > 0 ? ` (${report.unexpectedEvents.join(', ')})` : ''}`,
    `CPU (share of one core): ${run.cpu}; machine load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`,
    `targets: no late rounds ${lateRoundsTarget(report)}; p99 detection < 4 s ${report.detectionMs !== undefined && report.detected === report.tampered && report.detectionMs.p99 < 4000 ? 'MET' : 'MISSED'}`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

/**
 * Whether no round was late: none late against its predecessor, no agent left overdue at the window's
 * end, and some round timed at all — a window without a single timed round (a window too short) showed
 * 0 late rounds and read MET. An overdue agent is a miss even then: a stalled verifier times no round
 * and leaves every agent overdue.
 */
export function lateRoundsTarget(report: RoundTimingReport): 'MET' | 'MISSED' | 'NOT MEASURED' {
  if (report.lateRounds > 0 || report.overdueAgents > 0) return 'MISSED';
  return report.timedRounds === 0 ? 'NOT MEASURED' : 'MET';
}

/** Prints the first verifier's rounds per grid slot in the window's first and last `edgeMs`. */
export function printRoundsPerSlot(roundsPerSlot: { readonly first: string; readonly last: string }, edgeMs: number): void {
  process.stdout.write(`rounds per slot (first verifier), first ${edgeMs / 1000} s: ${roundsPerSlot.first}\nrounds per slot, last ${edgeMs / 1000} s: ${roundsPerSlot.last}\n`);
}

/** Late rounds of the timed ones, and their share. */
export function lateText(report: RoundTimingReport): string {
  return `${report.lateRounds}/${report.timedRounds} (${report.timedRounds === 0 ? '-' : ((100 * report.lateRounds) / report.timedRounds).toFixed(2)}%)`;
}

/** Tamper → verdict p50 / p99, in seconds (the summary table). */
export function detectionText(p: Percentiles | undefined): string {
  return p === undefined ? '-' : `${(p.p50 / 1000).toFixed(2)} / ${(p.p99 / 1000).toFixed(2)}`;
}

/** p50 / p99 / max in ms. */
function ms(p: Percentiles | undefined): string {
  return p === undefined ? '-' : `${p.p50.toFixed(0)} / ${p.p99.toFixed(0)} / ${p.max.toFixed(0)} ms`;
}

/** A share of one core as a percentage. */
export function pct(share: number): string {
  return `${(share * 100).toFixed(0)}%`;
}
