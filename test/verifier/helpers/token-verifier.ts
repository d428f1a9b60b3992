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
import { openTestSchema } from '../../helpers/databases.js';
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
  const opened = await openTestSchema();
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

/** A liveness enrolment body (`id-only`) of a node nobody answers for. */
export function livenessBody(caCert: string): Record<string, unknown> {
  return { identity_mode: 'id-only', ip: '127.0.0.1', port: 9, mtls_cert: caCert };
}
