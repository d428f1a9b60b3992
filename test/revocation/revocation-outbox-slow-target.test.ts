import { expect } from 'chai';
import { RevocationNotifier } from '../../lib/revocation/revocation-notifier.js';
import { openMigratedTestSchema, type OpenedDatabase } from '../helpers/databases.js';
import { eventually } from '../verifier/helpers/verifier-fixture.js';
import { newRsaKeyPairSync } from '../../lib/pki/rsa-key-source.js';

const REVOCATION_KEY_PEM = newRsaKeyPairSync().privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

/** One try of one delivery ends after this long; the target's first call takes five times as long. */
const DEADLINE_MS = 300;

/** The revocation outbox with an in-process target that ignores the deadline (real PostgreSQL). */
describe('revocation outbox: an in-process target slower than the deadline', function () {
  this.timeout(30_000);
  let opened: OpenedDatabase;
  let notifier: RevocationNotifier | undefined;

  before(async function () {
    opened = await openMigratedTestSchema();
  });

  after(async function () {
    await notifier?.close();
    await opened.dispose();
  });

  it('is not called again for a notice while its overrun call still runs; the notice is delivered once that call ends', async function () {
    let calls = 0;
    let running = 0;
    let mostAtOnce = 0;
    notifier = new RevocationNotifier({
      targets: {
        broker: async () => {
          calls += 1;
          running += 1;
          mostAtOnce = Math.max(mostAtOnce, running);
          await new Promise((resolve) => setTimeout(resolve, calls === 1 ? 5 * DEADLINE_MS : 0));
          running -= 1;
        },
      },
      timeoutMs: DEADLINE_MS,
      outbox: { knex: opened.database.knex, backoff: { initialDelayMs: 50, maxDelayMs: 100 }, pollMs: 100, leaseSeconds: 5 },
    });
    notifier.start();
    notifier.agentFailed({ agentId: 'slow-target-node', ip: null, port: null, tpmPolicy: '{}', metaData: '{}', revocationKey: REVOCATION_KEY_PEM, eventId: 'ima.validation.ima-ng.not_in_allowlist', severityLabel: 'emergency', context: {} });
    const ready = notifier;
    // `agentFailed` stores the notice in the background: an empty outbox before the first call is not a
    // delivery (a loaded CI host showed it so, with no call made). The first call overruns, so only a
    // later one can deliver.
    await eventually('the notice delivered', async () => calls >= 1 && running === 0 && (await ready.undelivered()) === 0, 20_000);
    expect(calls, 'tried again once the overrun call ended').to.be.at.least(2);
    expect(mostAtOnce, 'never two calls for one notice at once').to.equal(1);
  });
});
