import { readFile } from 'node:fs/promises';
import { request } from 'node:https';
import path from 'node:path';
import { CA_CERT_FILE } from '../lib/pki/ca-directory.js';
import { caDirOf } from '../lib/pki/service-tls.js';
import { abortableDelay } from '../lib/timing/abortable-delay.js';

/** `ironlime_verifier_rounds_per_slot` at one moment: slots counted per bucket bound (cumulative, as exposed), and the rounds' sum. */
export interface SlotHistogram {
  readonly buckets: ReadonlyMap<string, number>;
  readonly sum: number;
  readonly count: number;
}

/** A scrape slower than this is given up (reported as unreadable), so the window's end is not held up. */
const SCRAPE_TIMEOUT_MS = 5_000;

const BUCKET = /^ironlime_verifier_rounds_per_slot_bucket\{le="([^"]+)"\} (\d+)$/gm;

/**
 * The verifier's public `/metrics` text (no client certificate; the server certificate checked against
 * the bench's CA in `dataDir`).
 */
export async function readMetricsText(verifierUrl: string, dataDir: string): Promise<string> {
  const ca = await readFile(path.join(caDirOf(dataDir), CA_CERT_FILE));
  return new Promise<string>((resolve, reject) => {
    const req = request(new URL('/metrics', verifierUrl), { ca, timeout: SCRAPE_TIMEOUT_MS }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new Error(`/metrics answered ${res.statusCode}`));
        return;
      }
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve(body));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`/metrics did not answer within ${SCRAPE_TIMEOUT_MS} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** The verifier's rounds-per-slot histogram, from its `/metrics`. */
export async function readRoundsPerSlot(verifierUrl: string, dataDir: string): Promise<SlotHistogram> {
  const text = await readMetricsText(verifierUrl, dataDir);
  const buckets = new Map<string, number>();
  for (const [, le, count] of text.matchAll(BUCKET)) {
    buckets.set(le as string, Number(count));
  }
  const value = (name: string): number => Number(new RegExp(`^ironlime_verifier_rounds_per_slot_${name} (\\S+)$`, 'm').exec(text)?.[1] ?? Number.NaN);
  return { buckets, sum: value('sum'), count: value('count') };
}

/** The slots started between two readings, as "mean, then the share of slots in each bucket's range of rounds (`11–20: 43.5%`)". */
export function describeSlotsBetween(before: SlotHistogram, after: SlotHistogram): string {
  const slots = after.count - before.count;
  if (!(slots > 0)) {
    return 'no slots';
  }
  const shares: string[] = [];
  let below = 0;
  let lowest = 1;
  for (const [le, cumulative] of after.buckets) {
    const within = cumulative - (before.buckets.get(le) ?? 0);
    const range = le === '+Inf' ? `>${lowest - 1}` : Number(le) === lowest ? le : `${lowest}–${le}`;
    if (within > below) {
      shares.push(`${range}: ${((100 * (within - below)) / slots).toFixed(1)}%`);
    }
    below = within;
    lowest = Number(le) + 1;
  }
  return `${slots} slots, mean ${((after.sum - before.sum) / slots).toFixed(1)} rounds; ${shares.join(', ')}`;
}

/**
 * Reads the histogram at the window's start, `edgeMs` into it, `edgeMs` before its end and at its end,
 * and returns when the window ends: how the slots looked in the window's first and last stretch (does
 * bunching grow over the run?). A failed read is reported, never fatal to the bench; once `signal`
 * aborts, no more is read (each reading left is unreadable) and it returns at once.
 */
export async function slotsAtWindowEdges(
  verifierUrl: string,
  dataDir: string,
  window: { from: number; to: number; edgeMs: number },
  signal: AbortSignal,
): Promise<{ first: string; last: string }> {
  const at = async (time: number): Promise<SlotHistogram | undefined> => {
    const due = await abortableDelay(time - Date.now(), signal).then(
      () => true,
      () => false,
    );
    return due ? readRoundsPerSlot(verifierUrl, dataDir).catch(() => undefined) : undefined;
  };
  const readings = [];
  for (const time of [window.from, window.from + window.edgeMs, window.to - window.edgeMs, window.to]) {
    readings.push(await at(time));
  }
  const [start, afterFirst, beforeLast, end] = readings;
  const between = (a: SlotHistogram | undefined, b: SlotHistogram | undefined): string => (a === undefined || b === undefined ? 'unreadable' : describeSlotsBetween(a, b));
  return { first: between(start, afterFirst), last: between(beforeLast, end) };
}
