import type { RoundTimingReport, TimedSample } from './round-timing.js';

export interface TimingPlotOptions {
  readonly title: string;
  /** The measured window (ms since epoch): the x axis runs from 0 to its length in seconds. */
  readonly from: number;
  readonly to: number;
  /** Drawn as a dashed line on the start-delay panel: rounds above it are late. */
  readonly lateMs?: number;
}

const WIDTH = 900;
const PANEL_HEIGHT = 260;
const MARGIN = { left: 70, right: 20, top: 40, bottom: 40 };
/** Points drawn per panel at most: a long run keeps every ~nth sample, so the file stays small. */
const MAX_POINTS = 5000;

/**
 * The verifier benchmark's timing as an SVG image (hand-written, no dependency): start delay of
 * every timed round (top) and detection time of every tampering (bottom) against the time in the
 * window, so a slowdown, a stall or a backlog shows where it happened. The same input gives the same
 * bytes.
 */
export function timingPlotSvg(report: RoundTimingReport, options: TimingPlotOptions): string {
  const height = MARGIN.top + 2 * (PANEL_HEIGHT + MARGIN.bottom) + 10;
  const seconds = Math.max(1, (options.to - options.from) / 1000);
  const panels = [
    panel('start delay of each round (ms)', report.startDelays, options, seconds, MARGIN.top, '#2c6fbb', options.lateMs),
    panel('detection time of each tampering (ms)', report.detections, options, seconds, MARGIN.top + PANEL_HEIGHT + MARGIN.bottom, '#c0262d', undefined),
  ];
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${height}" fill="#ffffff"/>`,
    `<text x="${WIDTH / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(options.title)}</text>`,
    ...panels,
    '</svg>',
    '',
  ].join('\n');
}

function panel(title: string, samples: readonly TimedSample[], options: TimingPlotOptions, seconds: number, top: number, colour: string, lineMs: number | undefined): string {
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = PANEL_HEIGHT - 30;
  const y0 = top + 30;
  // A loop, not Math.min(...values): a 300 s window at 1,000 agents has some 140,000 samples, past the
  // arguments a call can spread onto the stack.
  let low = 0;
  let highest = Math.max(1, lineMs ?? 0);
  for (const sample of samples) {
    low = Math.min(low, sample.ms);
    highest = Math.max(highest, sample.ms);
  }
  const high = niceCeiling(highest);
  const x = (at: number): number => MARGIN.left + ((at - options.from) / 1000 / seconds) * plotWidth;
  const y = (ms: number): number => y0 + plotHeight - ((ms - low) / (high - low)) * plotHeight;
  const step = Math.max(1, Math.ceil(samples.length / MAX_POINTS));
  const parts = [
    `<text x="${MARGIN.left}" y="${top + 18}" font-weight="bold">${escapeXml(title)} — ${samples.length} sample(s)</text>`,
    `<rect x="${MARGIN.left}" y="${y0}" width="${plotWidth}" height="${plotHeight}" fill="none" stroke="#999"/>`,
  ];
  for (let i = 0; i <= 4; i += 1) {
    const ms = low + ((high - low) * i) / 4;
    parts.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left + plotWidth}" y1="${round(y(ms))}" y2="${round(y(ms))}" stroke="#eee"/>`);
    parts.push(`<text x="${MARGIN.left - 6}" y="${round(y(ms)) + 4}" text-anchor="end">${round(ms)}</text>`);
    const s = (seconds * i) / 4;
    const xs = round(MARGIN.left + (s / seconds) * plotWidth);
    // The last label ends at the axis' end, so it is not cut at the image's edge.
    parts.push(`<text x="${xs}" y="${y0 + plotHeight + 16}" text-anchor="${i === 4 ? 'end' : 'middle'}">${round(s)} s</text>`);
  }
  if (lineMs !== undefined) {
    parts.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left + plotWidth}" y1="${round(y(lineMs))}" y2="${round(y(lineMs))}" stroke="#c0262d" stroke-dasharray="6 4"/>`);
    parts.push(`<text x="${MARGIN.left + plotWidth - 4}" y="${round(y(lineMs)) - 4}" text-anchor="end" fill="#c0262d">late above ${round(lineMs)} ms</text>`);
  }
  for (let i = 0; i < samples.length; i += step) {
    const sample = samples[i] as TimedSample;
    parts.push(`<circle cx="${round(x(sample.at))}" cy="${round(y(sample.ms))}" r="2" fill="${colour}" fill-opacity="0.6"/>`);
  }
  if (samples.length === 0) {
    parts.push(`<text x="${MARGIN.left + plotWidth / 2}" y="${y0 + plotHeight / 2}" text-anchor="middle" fill="#777">no samples</text>`);
  }
  return parts.join('\n');
}

/** 1, 2 or 5 times a power of ten, at or above `value`. */
function niceCeiling(value: number): number {
  const power = 10 ** Math.floor(Math.log10(value));
  return ([1, 2, 5, 10].find((m) => m * power >= value) as number) * power;
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}

function escapeXml(text: string): string {
  return text.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c] as string);
}
