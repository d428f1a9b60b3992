import type { Database } from '../../../lib/db/database-factory.js';
import { startVerifier, type RunningVerifier } from '../../../lib/verifier/verifier-server.js';
import { openSchemaThroughPort } from '../../helpers/databases.js';
import { CommitReplyDropper } from './commit-reply-dropper.js';
import { PUSH_SETTINGS, type PushVerifier } from './push-verifier.js';

/**
 * A second verifier instance on a push verifier's schema whose database connections go through a
 * `CommitReplyDropper` (the test arms it to lose one COMMIT's reply), announcing failures to the
 * push verifier's webhook, so that `PushVerifier.announcement` sees what this instance announces.
 */
export class CommitDroppingInstance {
  private constructor(
    readonly proxy: CommitReplyDropper,
    private readonly database: Database,
    readonly verifier: RunningVerifier,
  ) {}

  /** Starts the instance next to `push` (started); `pushTimeout` as in `PUSH_SETTINGS`, seconds. */
  static async start(push: PushVerifier, instanceId: string, pushTimeout: number): Promise<CommitDroppingInstance> {
    const proxy = new CommitReplyDropper();
    await proxy.start();
    const database = await openSchemaThroughPort(push.opened.database.knex, proxy.port, push.dir);
    const verifier = await startVerifier(
      { dataDir: push.dir, ...PUSH_SETTINGS, pushTimeout, instanceId, revocationWebhooks: [push.webhookUrl()] },
      { database, inProcessForTests: true },
    );
    return new CommitDroppingInstance(proxy, database, verifier);
  }

  async close(): Promise<void> {
    await this.verifier.close().catch(() => undefined);
    await this.proxy.close();
    await this.database.close();
  }
}
