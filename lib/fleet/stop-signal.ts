/**
 * The first SIGTERM or SIGINT a long-running command receives, caught from the moment the command
 * starts: `ironlime fleet --duration` had no handler while it waited, so SIGTERM ended the process
 * without its teardown and left its agents enrolled (issue 11 item 7). After the first signal the
 * handlers are removed, so a second one ends the process as Node's default does. `abortSignal` aborts
 * on it too, for work that takes an AbortSignal (a fleet's enrolment, a benchmark's waits).
 */
export class StopSignal {
  readonly #signals: readonly NodeJS.Signals[];
  readonly #received: Promise<NodeJS.Signals>;
  #signal: NodeJS.Signals | undefined;
  readonly #onSignal: (signal: NodeJS.Signals) => void;
  readonly #aborter = new AbortController();

  constructor(signals: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT']) {
    this.#signals = signals;
    let resolve: (signal: NodeJS.Signals) => void = () => undefined;
    this.#received = new Promise((r) => {
      resolve = r;
    });
    this.#onSignal = (signal) => {
      this.#signal = signal;
      this.dispose();
      this.#aborter.abort(new Error(`received ${signal}`));
      resolve(signal);
    };
    for (const signal of signals) {
      process.on(signal, this.#onSignal);
    }
  }

  /** The signal received so far, if any. */
  get received(): NodeJS.Signals | undefined {
    return this.#signal;
  }

  /** Aborted, with the reason `received <signal>`, once the signal arrives. */
  get abortSignal(): AbortSignal {
    return this.#aborter.signal;
  }

  /** Resolves with the signal, or with 'timeout' after `ms` (no timeout when undefined). */
  async wait(ms?: number): Promise<NodeJS.Signals | 'timeout'> {
    if (ms === undefined) {
      return this.#received;
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), ms);
    });
    try {
      return await Promise.race([this.#received, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Removes the handlers (idempotent). */
  dispose(): void {
    for (const signal of this.#signals) {
      process.removeListener(signal, this.#onSignal);
    }
  }
}
