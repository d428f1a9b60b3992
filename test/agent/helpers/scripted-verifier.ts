import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A request the scripted verifier received. */
export interface SeenRequest {
  readonly method: string;
  readonly url: string;
  readonly auth: string | undefined;
  /** When the request's body had arrived (`performance.now()`). */
  readonly at: number;
}

/** Answers a request itself (true) or leaves it to the well-behaved verifier (false). */
export type Override = (req: IncomingMessage, res: ServerResponse) => boolean;

export interface ScriptedVerifier {
  readonly url: string;
  readonly seen: SeenRequest[];
  count(method: string, test: (url: string) => boolean): number;
  close(): Promise<void>;
}

export interface ScriptedVerifierOptions {
  /** `meta.seconds_to_next_attestation` of the 202 (default 1). */
  readonly nextSeconds?: number;
  /** `Location` of the 201 (default none). */
  readonly location?: string;
}

export function sendJson(res: ServerResponse, status: number, document: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/vnd.api+json', ...headers });
  res.end(JSON.stringify(document));
}

/**
 * A plain-HTTP push verifier on 127.0.0.1 for the push agent's tests: opens sessions, asks for a
 * PCR 10 quote and the IMA log, accepts any evidence — except what `override` answers itself.
 */
export async function startScriptedVerifier(override: Override = () => false, options: ScriptedVerifierOptions = {}): Promise<ScriptedVerifier> {
  const seen: SeenRequest[] = [];
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', auth: req.headers.authorization, at: performance.now() });
      if (!override(req, res)) answer(req, res, options);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    count: (method, test) => seen.filter((s) => s.method === method && test(s.url)).length,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

function answer(req: IncomingMessage, res: ServerResponse, options: ScriptedVerifierOptions): void {
  const url = req.url ?? '';
  if (req.method === 'POST' && url === '/v3.0/sessions') {
    sendJson(res, 200, { data: { id: 's1', attributes: { authentication_requested: [{ chosen_parameters: { challenge: Buffer.alloc(16, 7).toString('base64') } }] } } });
  } else if (req.method === 'PATCH' && url.startsWith('/v3.0/sessions/')) {
    sendJson(res, 200, { data: { attributes: { evaluation: 'pass', token: 's1.secret' } } });
  } else if (req.method === 'POST' && url.endsWith('/attestations')) {
    const requested = [
      { evidence_class: 'certification', evidence_type: 'tpm_quote', chosen_parameters: { challenge: Buffer.alloc(16, 1).toString('base64'), hash_algorithm: 'sha256', selected_subjects: { sha256: [10] } } },
      { evidence_class: 'log', evidence_type: 'ima_log', chosen_parameters: { starting_offset: 0 } },
    ];
    sendJson(res, 201, { data: { attributes: { evidence_requested: requested } } }, options.location === undefined ? {} : { location: options.location });
  } else if (req.method === 'PATCH' && url.includes('/attestations/')) {
    sendJson(res, 202, { data: {}, meta: { seconds_to_next_attestation: options.nextSeconds ?? 1 } });
  } else {
    sendJson(res, 404, {});
  }
}
