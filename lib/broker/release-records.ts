import type { BrokerRepository, PendingRelease } from './broker-repository.js';

/** The most releases one transaction records. */
export const MAX_RELEASE_BATCH = 64;

interface Waiting {
  readonly release: PendingRelease;
  resolve(): void;
  reject(error: unknown): void;
}

/**
 * Group commit of the `resource.release` records: a release that arrives while a batch's transaction
 * is under way waits for the next one, which takes every release queued by then (at most
 * `MAX_RELEASE_BATCH`), so under load the lock, the facts read, the signature, the insert and the
 * commit are shared, and an idle broker's release starts its transaction at once (no timer). Each
 * release resolves once its own record is committed, or rejects with what its `confirm` threw (its
 * record not appended) or with the batch's error (no record of the batch stored).
 */
export class ReleaseRecords {
  private queue: Waiting[] = [];
  private writing = false;

  constructor(private readonly repository: BrokerRepository) {}

  record(release: PendingRelease): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ release, resolve, reject });
      if (!this.writing) void this.write();
    });
  }

  /** Writes batches until the queue is empty. */
  private async write(): Promise<void> {
    this.writing = true;
    while (this.queue.length > 0) {
      const batch = this.queue.slice(0, MAX_RELEASE_BATCH);
      this.queue = this.queue.slice(batch.length);
      try {
        if (batch.length === 1) {
          // Alone: four round trips (`recordRelease`) where a batch takes five.
          const only = batch[0] as Waiting;
          await this.repository.recordRelease(only.release.event, only.release.path, only.release.agentId, only.release.confirm);
          only.resolve();
        } else {
          const outcomes = await this.repository.recordReleases(batch.map((waiting) => waiting.release));
          batch.forEach((waiting, index) => {
            const outcome = outcomes[index];
            if (outcome === 'recorded') waiting.resolve();
            else waiting.reject(outcome === undefined ? new Error('no outcome for a release of the batch') : outcome.refused);
          });
        }
      } catch (error) {
        for (const waiting of batch) waiting.reject(error);
      }
    }
    this.writing = false;
  }
}
