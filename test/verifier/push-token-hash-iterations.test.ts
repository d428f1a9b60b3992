import { pbkdf2Sync } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { InvalidConfig } from '../../interfaces/errors.js';
import { PushSessions } from '../../lib/verifier/push/push-sessions.js';
import type { PushSessionRepository } from '../../lib/verifier/push/push-session-repository.js';
import { hashTokenSecret, TOKEN_HASH_ITERATIONS, tokenHashIterations, useTokenHashIterationsForTests, type StoredTokenHash } from '../../lib/verifier/push/token-hash.js';
import type { VerifierAgentRepository } from '../../lib/verifier/verifier-agent-repository.js';
import { buildVerifierConfig } from '../../lib/verifier/verifier-config.js';
import { REPO_ROOT } from '../helpers/paths.js';
import { TEST_TOKEN_HASH_ITERATIONS } from '../setup.js';
import { PushVerifier } from './helpers/push-verifier.js';

const SETTINGS = { nonceLifetime: 60, sessionLifetime: 3600, verifierId: 'default', silence: { timeoutSeconds: 10, firstAttestationGraceSeconds: 60 }, now: () => Date.now() };

function sessionsWith(hashIterations?: number): PushSessions {
  return new PushSessions({} as PushSessionRepository, {} as VerifierAgentRepository, { ...SETTINGS, ...(hashIterations === undefined ? {} : { hashIterations }) });
}

/** True when `stored` is `secret` hashed with `iterations` PBKDF2-HMAC-SHA256 rounds. */
function hashedWith(secret: string, stored: StoredTokenHash, iterations: number): boolean {
  return pbkdf2Sync(secret, Buffer.from(stored.salt, 'base64'), iterations, 32, 'sha256').toString('base64') === stored.hash;
}

/** Runs `body` as a process that never lowered the rounds does (the CLI, a library user), then restores the tests' count. */
async function asProduction<T>(body: () => Promise<T>): Promise<T> {
  const lowered = useTokenHashIterationsForTests(undefined);
  try {
    return await body();
  } finally {
    useTokenHashIterationsForTests(lowered);
  }
}

/** Every .ts and .js file under `folder` (repository-relative). */
function sources(folder: string): string[] {
  return readdirSync(path.join(REPO_ROOT, folder), { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.ts') || file.endsWith('.js'))
    .map((file) => path.join(folder, file));
}

/**
 * The tests lower the push tokens' PBKDF2 rounds (test/setup.ts) to spare the suite 600,000 rounds per
 * session; a verifier anywhere else must keep Keylime's 600,000 and refuse fewer.
 */
describe('push session tokens: 600,000 PBKDF2 rounds outside the tests', function () {
  this.timeout(60_000);

  it('a process that did not lower the rounds hashes with 600,000, and PushSessions refuses fewer', async function () {
    await asProduction(async () => {
      expect(tokenHashIterations()).to.equal(600_000);
      const stored = await hashTokenSecret('the-secret');
      expect(hashedWith('the-secret', stored, TOKEN_HASH_ITERATIONS)).to.equal(true);
      expect(() => sessionsWith(TOKEN_HASH_ITERATIONS - 1)).to.throw(RangeError, 'test processes only');
      expect(() => sessionsWith(1)).to.throw(RangeError, 'test processes only');
      expect(() => sessionsWith(TOKEN_HASH_ITERATIONS)).to.not.throw();
      expect(() => sessionsWith()).to.not.throw();
    });
  });

  it('the tests lower them; a count that is not a positive integer is refused even there', function () {
    expect(tokenHashIterations()).to.equal(TEST_TOKEN_HASH_ITERATIONS);
    expect(() => sessionsWith(1)).to.not.throw();
    for (const bad of [0, -1, 1.5, Number.NaN]) {
      expect(() => sessionsWith(bad), String(bad)).to.throw(RangeError);
      expect(() => useTokenHashIterationsForTests(bad), String(bad)).to.throw(RangeError);
    }
    expect(tokenHashIterations()).to.equal(TEST_TOKEN_HASH_ITERATIONS);
  });

  it('a verifier started by a process that did not lower them stores its tokens hashed with 600,000 rounds', async function () {
    const push = new PushVerifier();
    try {
      await asProduction(() => push.start());
      const node = await push.bootNode();
      expect((await push.enrol(node)).status).to.equal(200);
      const [sessionId, secret] = (await node.agent.openSession()).split('.') as [string, string];
      const row = (await push.opened.database.knex('verifier_push_sessions').where({ session_id: sessionId }).first()) as { token_salt: string; token_hash: string };
      const stored = { salt: row.token_salt, hash: row.token_hash };
      expect(hashedWith(secret, stored, TOKEN_HASH_ITERATIONS), '600,000 rounds').to.equal(true);
    } finally {
      await push.close();
    }
  });

  it('nothing but the tests lowers them: no other source calls useTokenHashIterationsForTests, and no config field sets them', function () {
    const callers = ['lib', 'bin', 'drivers', 'examples', 'interfaces', 'migrations', 'bench', 'fuzz']
      .flatMap(sources)
      .concat('index.ts')
      .filter((file) => readFileSync(path.join(REPO_ROOT, file), 'utf8').includes('useTokenHashIterationsForTests'));
    expect(callers).to.deep.equal([path.join('lib', 'verifier', 'push', 'token-hash.ts')]);
    for (const field of ['hashIterations', 'tokenHashIterations', 'pushTokenHashIterations']) {
      expect(() => buildVerifierConfig({ dataDir: '/d', [field]: 1 }), field).to.throw(InvalidConfig);
    }
  });
});
