import { createServer, type Server } from 'node:https';
import type { OffThreadJson } from '../../../lib/http/off-thread-json.js';
import { RepeatedTexts } from '../../../lib/http/repeated-member-json.js';
import type { ReplyBudget } from '../../../lib/http/reply-budget.js';
import { PolicyCache } from '../../../lib/verifier/policy-cache.js';
import { loadPolledAgent, type PolledAgent } from '../../../lib/verifier/polled-agent.js';
import type { VerifierAgentRecord } from '../../../lib/verifier/verifier-agent-record.js';
import type { VerifierPolicyRepository } from '../../../lib/verifier/verifier-policy-repository.js';

/** A quote reply's JSON with one member's value, a huge JSON token, left for the server to splice in. */
export interface SplicedReply {
  /** The reply's JSON up to and with `"member":`. */
  readonly before: Buffer;
  /** The member's value as a JSON token, built once by the test. */
  readonly token: Buffer;
  /** The rest of the reply's JSON. */
  readonly after: Buffer;
}

/**
 * The reply `{code, status, results}` with `results[member]` spliced out: `results` must hold it as `""`,
 * which `token` replaces when the reply is written.
 */
export function splicedReply(results: Record<string, unknown>, member: string, token: Buffer): SplicedReply {
  const marker = `${JSON.stringify(member)}:""`;
  const [head, tail] = JSON.stringify({ code: 200, status: 'Success', results }).split(marker) as [string, string];
  return { before: Buffer.from(`${head}${JSON.stringify(member)}:`), token, after: Buffer.from(tail) };
}

/**
 * An agent's HTTPS server answering each request with `answer(query)`, its huge token written a MiB a
 * turn: the server shares the test's event loop, and encrypting tens of MiB at once would be its stall,
 * not the verifier's.
 */
export async function hugeReplyServer(tls: { readonly certPem: string; readonly keyPem: string }, answer: (query: URLSearchParams) => SplicedReply): Promise<{ readonly server: Server; readonly port: number }> {
  const server = createServer({ cert: tls.certPem, key: tls.keyPem }, (req, res) => {
    const { before, token, after } = answer(new URL(req.url ?? '/', 'https://agent').searchParams);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': before.length + token.length + after.length });
    res.write(before);
    void (async () => {
      for (let at = 0; at < token.length; at += 1024 * 1024) {
        res.write(token.subarray(at, at + 1024 * 1024));
        await new Promise((resolve) => setImmediate(resolve));
      }
      res.end(after);
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as { port: number }).port };
}

/** How a huge reply's agent is loaded: the policies it names, the verifier's client certificate, and the loop's reply budget and off-thread JSON reader. */
export interface HugeReplyAgentOptions {
  readonly policies: Partial<VerifierPolicyRepository>;
  readonly verifierTls: { readonly certPem: string; readonly keyPem: string };
  readonly replyBudget: ReplyBudget;
  readonly offThreadJson: OffThreadJson;
  readonly requestTimeoutMs: number;
}

/** `record` loaded as the pull loop loads it (its own policy cache and boot-log texts); throws when it does not load. */
export async function loadedHugeReplyAgent(record: VerifierAgentRecord, options: HugeReplyAgentOptions): Promise<PolledAgent> {
  const load = await loadPolledAgent(record, {
    policies: options.policies as VerifierPolicyRepository,
    cache: new PolicyCache(),
    clientTls: { cert: options.verifierTls.certPem, key: options.verifierTls.keyPem },
    requestTimeoutMs: options.requestTimeoutMs,
    measuredBootEvaluate: 'once',
    bootLogs: new RepeatedTexts(),
    replyBudget: options.replyBudget,
    offThreadJson: options.offThreadJson,
  });
  if (load.kind !== 'loaded') throw new Error(`the agent did not load: ${String(load.error)}`);
  return load.agent;
}
