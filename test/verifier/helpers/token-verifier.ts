import { mkdtempSync } from 'node:fs';
import type { ClientRequest } from 'node:http';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import { issueApiToken } from '../../../lib/auth/api-token.js';
import type { Role } from '../../../lib/auth/roles.js';
import { loadOrCreateTokenKey } from '../../../lib/auth/token-signing-key.js';
import { startVerifier, type RunningVerifier } from '../../../lib/verifier/verifier-server.js';
import { createSoftwareTpm } from '../../../lib/tpm-access/software/tpm-adapter.js';
import { openMigratedTestSchema } from '../../helpers/databases.js';
import { timedHttpsCall } from '../../helpers/timed-https-call.js';

export interface Reply {
  readonly status: number;
  readonly body: string;
}

/** A verifier on its own schema, called over HTTPS with bearer tokens of any role and tenant. */
export interface TokenVerifier {
  readonly verifier: RunningVerifier;
  readonly dataDir: string;
  readonly knex: Knex;
  token(role: Role, tenant: string, subject?: string): Promise<string>;
  call(method: string, urlPath: string, token: string, json?: unknown): Promise<Reply>;
  /**
   * Sends the headers and the first byte of `json`'s text now and resolves once the admin gate has had
   * time to run on them; `send` sends the rest: a body held while something else happens.
   */
  heldCall(method: string, urlPath: string, token: string, json: unknown): Promise<{ send(): Promise<Reply> }>;
  close(): Promise<void>;
}

/** How long a held request waits for the admin gate (run on its headers) before its caller goes on. */
const GATE_MS = 500;

/** `logger`: default silent. */
export async function startTokenVerifier(logger?: Logger): Promise<TokenVerifier> {
  const opened = await openMigratedTestSchema();
  const dataDir = mkdtempSync(path.join(tmpdir(), 'token-verifier-'));
  const verifier = await startVerifier({ dataDir, port: 0, quoteInterval: 1 }, { database: opened.database, ...(logger === undefined ? {} : { logger }) });
  const key = loadOrCreateTokenKey(dataDir);
  return {
    verifier,
    dataDir,
    knex: opened.database.knex,
    token: (role, tenant, subject = `${role}-of-${tenant}`) => issueApiToken({ subject, role, tenant, ttlSeconds: 600 }, key.privateKey),
    call: (method, urlPath, token, json) =>
      timedHttpsCall(
        verifier.url,
        verifier.caCert,
        method,
        urlPath,
        { authorization: `Bearer ${token}`, ...(json === undefined ? {} : { 'content-type': 'application/json' }) },
        json === undefined ? undefined : JSON.stringify(json),
      ),
    heldCall: async (method, urlPath, token, json) => {
      const text = JSON.stringify(json);
      let req: ClientRequest | undefined;
      const reply = new Promise<Reply>((resolve, reject) => {
        const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) };
        req = request(new URL(urlPath, verifier.url), { method, ca: verifier.caCert, headers }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        });
        req.on('error', reject);
        req.write(text.slice(0, 1));
      });
      await new Promise((resolve) => setTimeout(resolve, GATE_MS));
      return {
        send: () => {
          req?.end(text.slice(1));
          return reply;
        },
      };
    },
    close: async () => {
      await verifier.close();
      await opened.dispose();
    },
  };
}

/**
 * A `TokenVerifier` started before the suite's tests (before the suite's own `before` hooks registered
 * after this call) and closed after them; its members may be used from the first hook on.
 */
export function useTokenVerifier(logger?: Logger): TokenVerifier {
  let started: TokenVerifier | undefined;
  const current = (): TokenVerifier => {
    if (started === undefined) throw new Error('the token verifier is used before its before hook ran');
    return started;
  };
  before(async function () {
    this.timeout(60_000);
    started = await startTokenVerifier(logger);
  });
  after(async function () {
    this.timeout(60_000);
    await started?.close();
  });
  return {
    get verifier() {
      return current().verifier;
    },
    get dataDir() {
      return current().dataDir;
    },
    get knex() {
      return current().knex;
    },
    token: (role, tenant, subject) => current().token(role, tenant, subject),
    call: (method, urlPath, token, json) => current().call(method, urlPath, token, json),
    heldCall: (method, urlPath, token, json) => current().heldCall(method, urlPath, token, json),
    close: () => current().close(),
  };
}

/** A liveness enrolment body (`id-only`) of a node nobody answers for. */
export function livenessBody(caCert: string): Record<string, unknown> {
  return { identity_mode: 'id-only', ip: '127.0.0.1', port: 9, mtls_cert: caCert };
}

/** A push enrolment body (`POST /v2.x/agents/{id}`) with a software TPM's AK, judged on PCR 10 and no runtime policy. */
export async function softwarePushEnrolment(): Promise<Record<string, unknown>> {
  const ak = await (await createSoftwareTpm()).ensureAk('sha256');
  return {
    attestation_mode: 'push', tpm_policy: JSON.stringify({ mask: '0x400' }), runtime_policy: '', accept_tpm_hash_algs: ['sha256'],
    accept_tpm_encryption_algs: ['rsa', 'ecc'], accept_tpm_signing_algs: ['rsassa', 'ecdsa'], ak_tpm: Buffer.from(ak.akPublic).toString('base64'),
  };
}
