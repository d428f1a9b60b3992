import { Agent, request, type Dispatcher } from 'undici';
import { readBoundedBody } from '../http/bounded-body.js';
import { ServiceUnreachableError } from '../http/client-errors.js';
import { KbsBadReplyError, KbsRefusedError } from '../kbs-client/kbs-client-errors.js';
import { KBS_PREFIX, type ResourcePath } from './kbs-wire.js';
import type { ResourcePolicy } from './resource-policy.js';

export interface BrokerAdminClientOptions {
  /** Broker base URL (`https://host:8080`). */
  readonly url: string;
  /** PEMs: the broker's CA, and a client certificate and key issued by it. */
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
  /** One deadline over connecting, the headers and the whole answer; default 30 s. */
  readonly timeoutMs?: number;
}

/** Longest admin answer read: a revocation state or a refusal, a few hundred bytes. */
const MAX_REPLY_BYTES = 1024 * 1024;

/** What an operator (or the orchestrator) registers about a node. */
export interface BrokerNodeInput {
  readonly akTpm?: string;
  readonly tpmPolicy?: string;
  readonly runtimePolicy?: string;
  readonly mbRefstate?: string;
  readonly groups?: readonly string[];
}

/**
 * The broker's mTLS admin API as a typed client: nodes, resources (the secret is sent base64 over mTLS
 * and sealed by the broker), revocations. A refusal is `KbsRefusedError` with the RFC 7807 type.
 */
export class BrokerAdminClient {
  private readonly dispatcher: Dispatcher;
  private readonly baseUrl: string;
  private readonly timeoutMs: number;

  constructor(options: BrokerAdminClientOptions) {
    this.baseUrl = `${options.url.replace(/\/+$/, '')}${KBS_PREFIX}/admin`;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.dispatcher = new Agent({ connect: { ca: options.ca, cert: options.cert, key: options.key } });
  }

  putNode(agentId: string, node: BrokerNodeInput): Promise<void> {
    return this.send('PUT', `/nodes/${encodeURIComponent(agentId)}`, {
      ...(node.akTpm === undefined ? {} : { ak_tpm: node.akTpm }),
      ...(node.tpmPolicy === undefined ? {} : { tpm_policy: node.tpmPolicy }),
      ...(node.runtimePolicy === undefined ? {} : { runtime_policy: node.runtimePolicy }),
      ...(node.mbRefstate === undefined ? {} : { mb_refstate: node.mbRefstate }),
      ...(node.groups === undefined ? {} : { groups: node.groups }),
    });
  }

  deleteNode(agentId: string): Promise<void> {
    return this.send('DELETE', `/nodes/${encodeURIComponent(agentId)}`);
  }

  putResource(path: ResourcePath, data: Uint8Array, policy: Partial<ResourcePolicy>): Promise<void> {
    return this.send('PUT', `/resources/${resourceSegments(path)}`, {
      data: Buffer.from(data).toString('base64'),
      policy: {
        agents: policy.agents ?? [],
        groups: policy.groups ?? [],
        allow_tokens: policy.allow_tokens ?? true,
        verifier_standing: policy.verifier_standing ?? false,
        ...(policy.required_claims === undefined ? {} : { required_claims: policy.required_claims }),
      },
    });
  }

  deleteResource(path: ResourcePath): Promise<void> {
    return this.send('DELETE', `/resources/${resourceSegments(path)}`);
  }

  revoke(agentId: string, reason: string): Promise<void> {
    return this.send('POST', `/revocations/${encodeURIComponent(agentId)}`, { reason });
  }

  /** Ends the node's revocation in force, or with `version` only that one (409 `AdminConflict` if another is in force since). */
  reinstate(agentId: string, version?: string): Promise<void> {
    const query = version === undefined ? '' : `?version=${encodeURIComponent(version)}`;
    return this.send('DELETE', `/revocations/${encodeURIComponent(agentId)}${query}`);
  }

  /** The version of the node's revocation in force (for `reinstate`), null when none is. */
  async revocationInForce(agentId: string): Promise<string | null> {
    const text = await this.exchange('GET', `/revocations/${encodeURIComponent(agentId)}`);
    const answer = JSON.parse(text) as { in_force?: unknown; version?: unknown };
    if (answer.in_force === true && typeof answer.version === 'string') return answer.version;
    if (answer.in_force === false) return null;
    throw new Error(`the broker answered an unexpected revocation state: ${text.slice(0, 200)}`);
  }

  close(): Promise<void> {
    return this.dispatcher.close();
  }

  private async send(method: 'PUT' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<void> {
    await this.exchange(method, path, body);
  }

  /**
   * One request; resolves to the answer's text, or throws the broker's refusal (`KbsRefusedError`). The
   * answer is read as it comes and dropped past MAX_REPLY_BYTES (`KbsBadReplyError`), and one deadline
   * covers the whole exchange: undici's own timeouts count each wait apart, so a broker sending a byte
   * now and then would otherwise hold the caller (a deploy step) for ever.
   */
  private async exchange(method: 'GET' | 'PUT' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<string> {
    const url = `${this.baseUrl}${path}`;
    const deadline = AbortSignal.timeout(this.timeoutMs);
    let reply: Dispatcher.ResponseData;
    let text: string;
    try {
      reply = await request(url, {
        method,
        dispatcher: this.dispatcher,
        signal: deadline,
        ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
      });
      text = await readBoundedBody(reply.body, MAX_REPLY_BYTES, () => new KbsBadReplyError(url, `reply larger than ${MAX_REPLY_BYTES} bytes`));
    } catch (cause) {
      if (cause instanceof KbsBadReplyError) {
        throw cause;
      }
      if (deadline.aborted) {
        throw new ServiceUnreachableError(url, 'timeout', `no complete reply within ${this.timeoutMs} ms`, { cause });
      }
      throw new ServiceUnreachableError(url, 'network', String((cause as Error).message ?? cause), { cause });
    }
    if (reply.statusCode >= 300) {
      let problem: { type?: unknown; detail?: unknown } = {};
      try {
        problem = JSON.parse(text) as typeof problem;
      } catch {
        // Not a problem body: reported with an unknown type.
      }
      const type = typeof problem.type === 'string' ? problem.type.replace(/^.*\/errors\//, '') : 'unknown';
      throw new KbsRefusedError(url, reply.statusCode, type, typeof problem.detail === 'string' ? problem.detail : text.slice(0, 200));
    }
    return text;
  }
}

function resourceSegments(path: ResourcePath): string {
  return [path.repository, path.type, path.tag].map(encodeURIComponent).join('/');
}
