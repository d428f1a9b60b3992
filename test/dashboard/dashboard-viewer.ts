import { issueApiToken } from '../../lib/auth/api-token.js';
import { loadOrCreateTokenKey } from '../../lib/auth/token-signing-key.js';
import { verifierPerSuite, type SuiteVerifier } from '../helpers/verifier-per-suite.js';

/** A viewer token of `tenant` (10 minutes), signed with the key in the verifier's data folder `dataDir`. */
export function viewerToken(dataDir: string, tenant = 'default', subject = 'ops'): Promise<string> {
  return issueApiToken({ subject, role: 'viewer', tenant, ttlSeconds: 600 }, loadOrCreateTokenKey(dataDir).privateKey);
}

/** What `dashboardPerSuite` holds while its suite runs. */
export interface SuiteDashboard {
  readonly suite: SuiteVerifier;
  /** A viewer token of tenant `default`. */
  readonly token: string;
  /** A dashboard page with that token: its status and body. */
  get(url: string): Promise<{ readonly status: number; readonly body: string }>;
}

/**
 * Registers mocha hooks in the calling `describe`: an in-process verifier (`verifierPerSuite` with
 * `inProcessForTests`: no TLS, requests through `inject`) and a viewer token of tenant `default`.
 */
export function dashboardPerSuite(prefix: string): SuiteDashboard {
  const suite = verifierPerSuite(prefix, { inProcessForTests: true });
  let token: string | undefined;
  before(async () => {
    token = await viewerToken(suite.dataDir);
  });
  const held = (): string => {
    if (token === undefined) throw new Error('the suite viewer token is not issued yet');
    return token;
  };
  return {
    suite,
    get token(): string {
      return held();
    },
    async get(url) {
      const reply = await suite.verifier.service.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${held()}` } });
      return { status: reply.statusCode, body: reply.body };
    },
  };
}
