/** Where progress is drawn: a stream that may be a terminal (process.stderr). */
export interface ProgressStream {
  readonly isTTY?: boolean;
  readonly columns?: number;
  write(text: string): boolean;
}

/** Redraws at most this often: a terminal cannot show more, and writing costs. */
const REDRAW_MS = 100;
const BAR_WIDTH = 24;

/**
 * One line of progress on a terminal, redrawn in place: `label  [#####-----]  1,200/10,000  12%  ETA 8 s`,
 * or `label  1,200` when the total is unknown. When the stream is not a terminal (a pipe, a file,
 * CI) it writes nothing at all, so logs and captured output stay as they were.
 */
export class TerminalProgress {
  private readonly active: boolean;
  private readonly started: number;
  private lastDraw = Number.NEGATIVE_INFINITY;
  private drawn = false;

  constructor(
    private readonly label: string,
    private readonly stream: ProgressStream = process.stderr,
    private readonly now: () => number = Date.now,
  ) {
    this.active = stream.isTTY === true;
    this.started = now();
  }

  /** `done` of `total` (unknown: undefined) so far; redrawn when due and at the end. */
  update(done: number, total?: number): void {
    if (!this.active) return;
    const time = this.now();
    if (time - this.lastDraw < REDRAW_MS && done !== total) return;
    this.lastDraw = time;
    this.draw(this.text(done, total, time));
  }

  /** Clears the line (the caller prints its own summary after). */
  finish(): void {
    if (!this.active || !this.drawn) return;
    this.stream.write('\r\x1b[2K');
    this.drawn = false;
  }

  private text(done: number, total: number | undefined, time: number): string {
    if (total === undefined || total <= 0) return `${this.label}  ${done.toLocaleString('en')}`;
    const share = Math.min(1, done / total);
    const filled = Math.round(share * BAR_WIDTH);
    const elapsed = (time - this.started) / 1000;
    const eta = done > 0 && share < 1 ? `  ETA ${Math.ceil((elapsed / done) * (total - done))} s` : '';
    const counts = `${done.toLocaleString('en')}/${total.toLocaleString('en')}`;
    return `${this.label}  [${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}]  ${counts}  ${Math.floor(share * 100)}%${eta}`;
  }

  private draw(line: string): void {
    const width = Math.max(20, (this.stream.columns ?? 80) - 1);
    this.stream.write(`\r\x1b[2K${line.length > width ? line.slice(0, width) : line}`);
    this.drawn = true;
  }
}
