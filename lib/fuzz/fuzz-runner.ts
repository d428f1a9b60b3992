import { FuzzRandom } from './fuzz-random.js';
import { isTypedFuzzError, type FuzzTarget } from './fuzz-target-kit.js';
import { mutateBytes, mutateText } from './mutate.js';

/** What one input did to a target. */
export interface FuzzFinding {
  readonly index: number;
  readonly kind: 'untyped-exception' | 'hang' | 'memory';
  readonly detail: string;
}

export interface FuzzReport {
  readonly target: string;
  readonly seed: number;
  readonly start: number;
  /** Inputs run to the end (accepted or refused with a typed error). */
  readonly inputs: number;
  readonly accepted: number;
  readonly typedErrors: number;
  readonly findings: readonly FuzzFinding[];
  /** Slowest single input, in milliseconds of wall time. */
  readonly slowestMs: number;
  /** CPU time of the whole run (user + system), in microseconds. */
  readonly cpuMicros: number;
}

export interface RunOptions {
  readonly seed: number;
  readonly start?: number;
  readonly count: number;
  /** An input slower than this is a hang finding (in-process runs cannot interrupt it; the CLI's watchdog can). */
  readonly slowMs?: number;
  /** Called before each input with its index (the CLI's watchdog reads it). */
  readonly onInput?: (index: number) => void;
}

/** FNV-1a of the target name, so each target draws a different stream from one `--seed`. */
function nameHash(name: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < name.length; i += 1) {
    hash = Math.imul(hash ^ name.charCodeAt(i), 0x01000193) >>> 0;
  }
  return hash;
}

/**
 * Input `index` of a run: the seeds themselves first (unchanged), then mutations of a random seed,
 * possibly spliced with another. Deterministic in (target, seed, index).
 */
export function fuzzInput(target: FuzzTarget, seeds: readonly (Uint8Array | string)[], seed: number, index: number): Uint8Array | string {
  const pool = seeds.length > 0 ? seeds : [new Uint8Array(0)];
  if (index < pool.length) {
    return pool[index] as Uint8Array | string;
  }
  const random = new FuzzRandom((seed ^ nameHash(target.name)) >>> 0, index);
  const base = random.pick(pool);
  const other = random.pick(pool);
  if (target.kind === 'text') {
    const text = (v: Uint8Array | string): string => (typeof v === 'string' ? v : Buffer.from(v).toString('utf8'));
    return mutateText(random, text(base), text(other), target.tokens ?? []);
  }
  const bytes = (v: Uint8Array | string): Uint8Array => (typeof v === 'string' ? Buffer.from(v, 'utf8') : v);
  return mutateBytes(random, bytes(base), bytes(other));
}

/**
 * Runs `count` inputs of `target` in this thread and classifies each: accepted, typed error, or a
 * finding (an untyped exception — TypeError, RangeError, a bare Error, a stack overflow — or an input
 * slower than `slowMs`).
 */
export function runTarget(target: FuzzTarget, options: RunOptions): FuzzReport {
  const seeds = target.seeds();
  const start = options.start ?? 0;
  const findings: FuzzFinding[] = [];
  let accepted = 0;
  let typedErrors = 0;
  let slowestMs = 0;
  const cpuBefore = process.cpuUsage();
  for (let index = start; index < start + options.count; index += 1) {
    options.onInput?.(index);
    const input = fuzzInput(target, seeds, options.seed, index);
    const began = performance.now();
    try {
      target.run(input);
      accepted += 1;
    } catch (error) {
      if (isTypedFuzzError(error)) {
        typedErrors += 1;
      } else {
        findings.push({ index, kind: 'untyped-exception', detail: describe(error) });
      }
    }
    const ms = performance.now() - began;
    slowestMs = Math.max(slowestMs, ms);
    if (options.slowMs !== undefined && ms > options.slowMs) {
      findings.push({ index, kind: 'hang', detail: `took ${Math.round(ms)} ms (bound ${options.slowMs} ms)` });
    }
  }
  const cpu = process.cpuUsage(cpuBefore);
  return {
    target: target.name,
    seed: options.seed,
    start,
    inputs: accepted + typedErrors,
    accepted,
    typedErrors,
    findings,
    slowestMs,
    cpuMicros: cpu.user + cpu.system,
  };
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const where = (error.stack ?? '').split('\n').find((line) => line.includes('/lib/'))?.trim() ?? '';
    return `${error.constructor.name}: ${error.message.slice(0, 300)}${where === '' ? '' : ` (${where})`}`;
  }
  return `non-Error thrown: ${String(error).slice(0, 300)}`;
}
