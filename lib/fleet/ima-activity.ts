import type { CatalogFile } from './fleet-policies.js';

/** What the activity needs from a node: a way to run a known-good file. */
export interface ActiveNode {
  run(file: CatalogFile): Promise<void>;
}

export interface ImaActivityOptions {
  /** Known-good files to run, in a round-robin per node. */
  readonly catalog: readonly CatalogFile[];
  /** Average IMA entries per minute per node (0 stops growth). */
  readonly entriesPerMinute: number;
  /** Tick length in milliseconds (default 1000). */
  readonly tickMs?: number;
  /** Called when a node cannot run a file (its agent is closing, its TPM is gone). */
  readonly onError?: (error: unknown) => void;
}

interface NodeActivity {
  readonly node: ActiveNode;
  /** Accumulated entries owed; one file runs per whole unit. */
  credit: number;
  next: number;
}

/**
 * Makes every node's IMA log grow as a live machine's does: on each tick every node earns
 * `entriesPerMinute × tick / 60 s` entries of credit and runs one known-good file per whole unit,
 * taking the files of the catalog in turn from a random start. Starting credits are random, so the
 * entries of a thousand nodes spread over the minute instead of landing on the same tick. One timer
 * serves the whole fleet.
 */
export class ImaActivity {
  private readonly nodes: NodeActivity[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly perTick: number;

  constructor(private readonly options: ImaActivityOptions) {
    this.perTick = (options.entriesPerMinute * (options.tickMs ?? 1000)) / 60_000;
  }

  add(node: ActiveNode): void {
    this.nodes.push({
      node,
      credit: Math.random(),
      next: Math.floor(Math.random() * this.options.catalog.length),
    });
  }

  start(): void {
    if (this.timer !== undefined || this.perTick <= 0) {
      return;
    }
    this.timer = setInterval(() => this.tick(), this.options.tickMs ?? 1000);
    this.timer.unref();
  }

  /** Stops the timer and waits for the files being run. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await Promise.all([...this.inFlight]);
  }

  private tick(): void {
    for (const activity of this.nodes) {
      activity.credit += this.perTick;
      while (activity.credit >= 1) {
        activity.credit -= 1;
        const file = this.options.catalog[activity.next % this.options.catalog.length] as CatalogFile;
        activity.next += 1;
        const run = activity.node.run(file).catch((error: unknown) => this.options.onError?.(error));
        this.inFlight.add(run);
        void run.finally(() => this.inFlight.delete(run));
      }
    }
  }
}
