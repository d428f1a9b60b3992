import { expect } from 'chai';
import { pino } from 'pino';
import { MemoryImaList } from '../../lib/agent/memory-ima-list.js';
import { PushAgent } from '../../lib/agent/push/push-agent.js';
import { pollUntil } from '../../lib/timing/poll-until.js';
import { createSoftwareTpm, type SoftwareTpm } from '../../lib/tpm-access/software/tpm-adapter.js';
import type { AkInfo } from '../../lib/tpm-access/tpm-port.js';
import { sendJson, startScriptedVerifier, type ScriptedVerifier } from './helpers/scripted-verifier.js';

/**
 * A session proof answered with a token the agent cannot send back as `Authorization: Bearer`
 * (RFC 6750 §2.1 b64token): kept, it failed every later request before or at the verifier (undici
 * refuses a header with a line break; a 200 KB header is answered 431), and only a 401 dropped a
 * token, so the agent never opened another session until it was restarted. Such a token fails the
 * session attempt instead, and the next attempt opens a new session.
 */
describe('push agent: a session token it cannot send is refused, and a new session opened', function () {
  this.timeout(30_000);
  let tpm: SoftwareTpm;
  let ak: AkInfo;
  let verifier: ScriptedVerifier | undefined;

  before(async function () {
    tpm = await createSoftwareTpm();
    await tpm.ensureEk();
    ak = await tpm.ensureAk('sha256');
  });
  afterEach(async function () {
    await verifier?.close();
    verifier = undefined;
  });

  const badTokens: [string, string][] = [
    ['a line break', 's1.sec\nret'],
    ['200,000 characters', `s1.${'x'.repeat(200_000)}`],
    ['no characters', ''],
  ];

  for (const [what, badToken] of badTokens) {
    it(`a token with ${what} from the first proof: the next attempt opens a session and attests with its token`, async function () {
      let proofs = 0;
      verifier = await startScriptedVerifier((req, res) => {
        if (req.method !== 'PATCH' || !(req.url ?? '').startsWith('/v3.0/sessions/')) return false;
        proofs += 1;
        sendJson(res, 200, { data: { attributes: { evaluation: 'pass', token: proofs === 1 ? badToken : 's1.secret' } } });
        return true;
      });
      const list = new MemoryImaList();
      list.append('10 aa ima-ng sha256:bb boot_aggregate\n');
      const agent = new PushAgent({
        uuid: 'node-1',
        verifierUrl: verifier.url,
        tpm,
        ak,
        logs: { imaList: async (n) => list.slice(n), imaLineCount: async () => list.lineCount(), bootLogBase64: async () => undefined },
        bootTime: new Date(0),
        backoff: { initialDelayMs: 100, maxDelayMs: 200 },
        log: pino({ level: 'silent' }),
      });
      const stop = new AbortController();
      const running = agent.run(stop.signal);
      const server = verifier;
      try {
        // A deadline seconds past the 100 ms back-off: without the refusal no second session ever comes.
        await pollUntil({ timeoutMs: 10_000, intervalMs: 20 }, 'evidence sent with the second session\'s token', async () =>
          server.seen.some((seen) => seen.method === 'PATCH' && seen.url.includes('/attestations/') && seen.auth === 'Bearer s1.secret'),
        );
      } finally {
        stop.abort();
        await running;
      }
      expect(server.seen.filter((seen) => seen.url.includes('/attestations')).every((seen) => seen.auth === 'Bearer s1.secret')).to.equal(true);
    });
  }
});
