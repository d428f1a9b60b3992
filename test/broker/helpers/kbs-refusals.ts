import { expect } from 'chai';
import type { KbsHttp } from '../../../lib/kbs-client/kbs-http.js';
import type { TeeKeyPair } from '../../../lib/kbs-client/tee-key-pair.js';
import type { RuntimeData } from '../../../lib/broker/kbs-wire.js';
import { refusal } from './broker-fixture.js';

/** A fresh RCAR session: its cookie and the challenge nonce. */
export interface OpenSession {
  readonly cookie: string;
  readonly nonce: string;
}

/** `POST /auth` as a tpm KBS client sends it. */
export async function openSession(http: KbsHttp): Promise<OpenSession> {
  const auth = await http.send('POST', '/kbs/v0/auth', { body: { version: '0.4.0', tee: 'tpm' } });
  return { cookie: String(auth.headers['set-cookie']).split(';')[0] as string, nonce: (auth.body as { nonce: string }).nonce };
}

/** The runtime data a client sends for `nonce` and `key`. */
export function runtimeDataOf(nonce: string, key: TeeKeyPair): RuntimeData {
  return { nonce, 'tee-pubkey': key.publicJwk };
}

/** `POST /attest` in session `cookie` with `evidence` as the primary evidence; resolves to the token. */
export async function attest(http: KbsHttp, cookie: string, runtimeData: RuntimeData, evidence: object): Promise<string> {
  const reply = await http.send('POST', '/kbs/v0/attest', {
    body: { 'runtime-data': runtimeData, 'tee-evidence': { primary_evidence: evidence } },
    headers: { cookie },
  });
  return (reply.body as { token: string }).token;
}

/**
 * Expects `promise` to end in a KBS refusal with exactly this HTTP status and RFC 7807 type; resolves
 * to its detail for further checks.
 */
export async function expectRefused(promise: Promise<unknown>, status: number, type: string, what = ''): Promise<string> {
  const error = await refusal(promise);
  expect([error.remoteHttpStatus, error.kbsType], `${what}: ${error.message}`).to.deep.equal([status, type]);
  return error.detail;
}
