import { randomUUID } from 'node:crypto';
import type { PushSession } from '../../../lib/verifier/push/push-session-repository.js';
import { hashTokenSecret } from '../../../lib/verifier/push/token-hash.js';

/** A session of `agentId` whose challenge was answered a minute ago and whose token (`secret`) lasts an hour. */
export async function authenticatedPushSession(agentId: string, secret: string, iterations: number): Promise<PushSession> {
  return {
    sessionId: randomUUID(),
    agentId,
    challenge: 'c',
    createdAt: new Date(Date.now() - 61_000),
    challengeExpiresAt: new Date(Date.now() - 1000),
    token: await hashTokenSecret(secret, iterations),
    tokenExpiresAt: new Date(Date.now() + 3_600_000),
  };
}
