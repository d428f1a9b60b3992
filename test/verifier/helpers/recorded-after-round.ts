import type { AfterRound } from '../../../lib/verifier/round-persister.js';

/** What a finished round leads to, recorded step by step (`schedule`, `reconcile`, `drop`) instead of done. */
export class RecordedAfterRound implements AfterRound {
  readonly steps: string[] = [];
  schedule(): void {
    this.steps.push('schedule');
  }
  reconcile(): Promise<void> {
    this.steps.push('reconcile');
    return Promise.resolve();
  }
  drop(): void {
    this.steps.push('drop');
  }
}
