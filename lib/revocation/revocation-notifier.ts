import { Agent, type Dispatcher } from 'undici';
import type { Logger } from 'pino';
import type { Statements } from '../db/fixed-statement.js';
import { pino } from 'pino';
import { backoffDelayMs, type ExponentialBackoff } from '../timing/backoff.js';
import { beforeDeadline } from '../timing/before-deadline.js';
import { ReceiverRefusals } from './receiver-refusals.js';
import type { AgentFailureNotice, RevocationAgentTarget } from './revocation-notice.js';
import { finalRefusalStatus, postEnvelope, type Delivery } from './revocation-post.js';
import { RevocationOutbox, type OutboxDelivery, type OutboxNotice, type RevocationOutboxOptions } from './revocation-outbox.js';
import { asctime, signRevocation, type RevocationEnvelope, type RevocationMessage } from './revocation-message.js';

/** Back-off of every delivery: `attempts` tries, delays doubling from `initialDelayMs` up to `maxDelayMs`. */
export interface RetryPolicy extends ExponentialBackoff {
  readonly attempts: number;
}

/** A delivery in-process (e.g. the broker withdrawing the node): resolves when done, throws to be retried. */
export type RevocationTarget = (message: RevocationMessage, envelope: RevocationEnvelope) => Promise<void>;

export interface RevocationNotifierOptions {
  /** `--revocation-webhook` URLs: each receives the envelope JSON by POST. */
  readonly webhooks?: readonly string[];
  /** PEM CA(s) for HTTPS webhooks (default: system roots). */
  readonly webhookCa?: string;
  /** The verifier's client certificate for agents' mTLS (`agent` notifications are skipped without it). */
  readonly agentTls?: { readonly cert: string; readonly key: string; readonly ca?: string };
  /**
   * In-process receivers by name: the name is the receiver's identity in the outbox, so a kept notice
   * goes to the target of that name whatever the order or the other targets of the next process.
   */
  readonly targets?: Readonly<Record<string, RevocationTarget>>;
  readonly retry?: Partial<RetryPolicy>;
  /**
   * The verifier's database: notices to the webhooks and targets are kept there until delivered
   * (`RevocationOutbox`). Absent: they are tried `retry.attempts` times in memory only.
   */
  readonly outbox?: Omit<RevocationOutboxOptions, 'deliver' | 'log' | 'deliveryTimeoutMs'>;
  /** The longest one try of one delivery may take, the receiver's answer included (default 10 s). */
  readonly timeoutMs?: number;
  readonly log?: Logger;
  /** Unix milliseconds (tests). */
  readonly now?: () => number;
}

/**
 * A notice signed and ready to send (`RevocationNotifier.prepare`). `recorded` is set once its rows are
 * written in the verdict's transaction (`RevocationNotifier.recordIn`).
 */
export interface PreparedRevocation {
  readonly notice: AgentFailureNotice;
  readonly message: RevocationMessage;
  readonly envelope: RevocationEnvelope;
  recorded: boolean;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 5, initialDelayMs: 1000, maxDelayMs: 60_000 };

/** Agent deliveries of one notice in flight at once: a fan-out to thousands of agents trickles, it does not flood the event loop. */
const AGENT_FAN_OUT = 8;

/**
 * Sends Keylime revocation notifications when the verifier fails an agent (spec §9.2): the signed
 * envelope goes to every webhook, to every other agent of the same tenant (`/notifications/revocation`), and to the
 * in-process targets (the broker withdrawing the node). `agentFailed` returns at once — deliveries run
 * in the background, each retried with exponential back-off — so an attestation round never waits on
 * a slow or dead receiver. Delivery failures are logged, never thrown.
 */
export class RevocationNotifier {
  private readonly inFlight = new Set<Promise<void>>();
  /** Wakes the deliveries waiting out a back-off (on close). */
  private readonly sleepers = new Set<() => void>();
  private readonly retry: RetryPolicy;
  private readonly log: Logger;
  private readonly webhookDispatcher: Dispatcher;
  private readonly refusals = new ReceiverRefusals();
  private readonly outbox: RevocationOutbox | undefined;
  private closed = false;

  constructor(private readonly options: RevocationNotifierOptions) {
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
    this.log = options.log ?? pino({ level: 'silent' });
    this.webhookDispatcher = new Agent({ connect: options.webhookCa === undefined ? {} : { ca: options.webhookCa } });
    this.outbox =
      options.outbox === undefined
        ? undefined
        : new RevocationOutbox({ ...options.outbox, log: this.log, deliveryTimeoutMs: this.timeoutMs(), deliver: (notice, deadline) => this.deliverFromOutbox(notice, deadline) });
  }

  /**
   * The verifier's call when it fails an agent: `prepare` then `announce`. Never throws and never
   * blocks: a bad revocation key is logged and the message goes out unsigned, as Keylime does.
   */
  agentFailed(notice: AgentFailureNotice): void {
    if (this.closed) return;
    this.announce(this.prepare(notice));
  }

  /** The notice's message, signed with the agent's revocation key (unsigned when the key is unusable, as Keylime). */
  prepare(notice: AgentFailureNotice): PreparedRevocation {
    const message: RevocationMessage = {
      type: notice.type ?? 'revocation',
      ip: notice.ip,
      agent_id: notice.agentId,
      port: notice.port,
      tpm_policy: notice.tpmPolicy,
      meta_data: notice.metaData,
      event_time: asctime((this.options.now ?? Date.now)()),
      event_id: notice.eventId,
      severity_label: notice.severityLabel,
      context: typeof notice.context === 'string' ? notice.context : JSON.stringify(notice.context ?? {}),
    };
    let envelope: RevocationEnvelope;
    try {
      envelope = signRevocation(message, notice.revocationKey);
    } catch (error) {
      this.log.error({ err: error, agentId: notice.agentId }, 'revocation key unusable: notification sent unsigned');
      envelope = { msg: JSON.stringify(message), signature: '' };
    }
    return { notice, message, envelope, recorded: false };
  }

  /**
   * Writes the outbox rows of `prepared` (one per webhook and target) through `run`, the transaction
   * storing their verdicts: a notice is kept exactly when its verdict is. Runs nothing without an
   * outbox, or for no notice (a batch of passes costs nothing more).
   */
  async recordIn(run: Statements, prepared: readonly PreparedRevocation[]): Promise<void> {
    if (this.outbox === undefined || prepared.length === 0) return;
    await RevocationOutbox.record(run, prepared.flatMap((each) => this.outboxRows(each)));
    for (const each of prepared) each.recorded = true;
  }

  /**
   * Sends a prepared notice once its verdict is stored; returns at once. With an outbox, the webhooks
   * and targets get it from there (recorded now when the verdict's transaction did not); the other
   * agents of the notice's tenant (none without one) always get it from memory, best effort.
   */
  announce(prepared: PreparedRevocation): void {
    if (this.closed) return;
    const { notice, message, envelope } = prepared;
    const body = JSON.stringify(envelope);
    const outbox = this.outbox;
    if (outbox !== undefined && prepared.recorded) {
      outbox.wake();
    } else if (outbox !== undefined) {
      this.track('outbox', async () => {
        await outbox.recordNow(this.outboxRows(prepared));
        outbox.wake();
      });
    } else {
      for (const url of this.options.webhooks ?? []) {
        this.track(`webhook ${url}`, () => this.post(url, body, this.webhookDispatcher));
      }
      for (const [name, target] of Object.entries(this.options.targets ?? {})) {
        this.track(`target ${name}`, () => target(message, envelope));
      }
    }
    const { otherAgents: others, tenant } = notice;
    if (this.options.agentTls !== undefined && others !== undefined && tenant !== undefined) {
      const signer = envelope.signature === '' ? '' : notice.revocationKey;
      this.track('agents', () => this.fanOut(notice.agentId, tenant, others, envelope, signer), 1);
    }
  }

  /** Starts delivering what the outbox holds (notices a previous process left undelivered). */
  start(): void {
    this.outbox?.start();
  }

  /** Notices waiting in the outbox (0 without one). */
  undelivered(): Promise<number> {
    return this.outbox?.undelivered() ?? Promise.resolve(0);
  }

  /** Resolves when every delivery started so far has succeeded or given up (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.inFlight.size > 0) {
      await Promise.allSettled([...this.inFlight]);
    }
  }

  /**
   * Stops accepting notices and waits for deliveries in flight (each gets its current try; no further
   * retries in memory). The outbox keeps what is undelivered for the next process.
   */
  async close(): Promise<void> {
    this.closed = true;
    for (const wake of [...this.sleepers]) wake();
    await this.idle();
    await this.outbox?.close();
    await this.webhookDispatcher.close();
  }

  /** One outbox row per configured receiver. */
  private outboxRows(prepared: PreparedRevocation): OutboxNotice[] {
    const envelope = JSON.stringify(prepared.envelope);
    const receivers = [...(this.options.webhooks ?? []).map((url) => `webhook ${url}`), ...Object.keys(this.options.targets ?? {}).map((name) => `target ${name}`)];
    return receivers.map((receiver) => ({ receiver, agentId: prepared.notice.agentId, envelope }));
  }

  /** One outbox delivery: throws what is worth trying again. */
  private async deliverFromOutbox(notice: OutboxNotice, deadline: AbortSignal): Promise<OutboxDelivery> {
    const space = notice.receiver.indexOf(' ');
    const kind = notice.receiver.slice(0, space);
    const name = notice.receiver.slice(space + 1);
    try {
      if (kind === 'webhook' && (this.options.webhooks ?? []).includes(name)) {
        await this.post(name, notice.envelope, this.webhookDispatcher, deadline);
        return 'delivered';
      }
      const targets = this.options.targets ?? {};
      const target = kind === 'target' && Object.hasOwn(targets, name) ? targets[name] : undefined;
      if (target === undefined) return 'unknown_receiver';
      const envelope = JSON.parse(notice.envelope) as RevocationEnvelope;
      await target(JSON.parse(envelope.msg) as RevocationMessage, envelope);
      return 'delivered';
    } catch (error) {
      // 401 and 403 say the receiver cannot check the notice yet (a broker without the verifier's revocation
      // certificate, or with an expired one): kept and retried, so the failures of that window still reach it
      // once the operator fixes it. Other 4xx will not change on a retry.
      const refusal = finalRefusalStatus(error);
      if (refusal !== undefined && refusal !== 401 && refusal !== 403) return 'refused';
      throw error;
    }
  }

  private track(what: string, deliver: () => Promise<void>, attempts = this.retry.attempts): void {
    const run = this.withRetries(what, deliver, attempts)
      .then(({ outcome }) => {
        if (outcome === 'refused') this.log.warn({ to: what }, 'revocation notification refused: not retried');
      })
      .finally(() => this.inFlight.delete(run));
    this.inFlight.add(run);
  }

  /**
   * Delivers to every other agent of `tenant`, `AGENT_FAN_OUT` at a time, each with its own retries, and logs one
   * summary line (not one per agent: a fleet of agents without a revocation key refuses every notice).
   * An agent that refused a notice by `signer` outright on the connection it still has is skipped
   * (`ReceiverRefusals`). Starts on a later turn of the event loop, so listing the agents never runs on
   * the caller's stack. Once the notifier closes, no further agent is started.
   */
  private async fanOut(
    failedAgentId: string,
    tenant: string,
    others: NonNullable<AgentFailureNotice['otherAgents']>,
    envelope: RevocationEnvelope,
    signer: string,
  ): Promise<void> {
    await new Promise((resolve) => setImmediate(resolve));
    const body = JSON.stringify(envelope);
    // Only the failed agent's own tenant: the notice names its node, address, policy and failure.
    const targets = (typeof others === 'function' ? [...others()] : others).filter((agent) => agent.agentId !== failedAgentId && agent.tenant === tenant);
    const outcomes = { delivered: 0, refused: 0, refused_before: 0, gave_up: 0, not_sent_closing: 0 };
    let next = 0;
    const worker = async (): Promise<void> => {
      // Closing: the agents not yet started are left (the fan-out is best effort), so shutdown waits only for the tries in flight.
      while (next < targets.length && !this.closed) {
        const agent = targets[next++] as RevocationAgentTarget;
        if (this.refusals.refuses(agent, signer)) {
          outcomes.refused_before += 1;
          continue;
        }
        const connection = agent.receiver?.();
        const delivery = await this.withRetries(`agent ${agent.agentId}`, this.triesTo(agent, body), this.retry.attempts);
        outcomes[delivery.outcome] += 1;
        if (delivery.outcome === 'refused') this.refusals.remember(agent, signer, delivery.status, connection);
      }
    };
    await Promise.all(Array.from({ length: Math.min(AGENT_FAN_OUT, targets.length) }, worker));
    outcomes.not_sent_closing = targets.length - next;
    this.log[outcomes.delivered === targets.length ? 'info' : 'warn']({ agentId: failedAgentId, ...outcomes }, 'revocation notice fanned out to the other agents');
  }

  /** One delivery with back-off; never throws. Only a retryable failure is logged per attempt. */
  private async withRetries(what: string, deliver: () => Promise<void>, attempts: number): Promise<Delivery> {
    for (let attempt = 1; attempt <= attempts; attempt += 1) {
      try {
        await deliver();
        this.log.debug({ to: what, attempt }, 'revocation notification delivered');
        return { outcome: 'delivered' };
      } catch (error) {
        const refusal = finalRefusalStatus(error);
        if (refusal !== undefined) {
          return { outcome: 'refused', status: refusal };
        }
        // Once closing, every delivery still gets its one try, but no back-off holds up shutdown.
        if (attempt === attempts || this.closed) {
          this.log.error({ err: error, to: what, attempts: attempt }, 'revocation notification not delivered: giving up');
          return { outcome: 'gave_up' };
        }
        const delay = backoffDelayMs(attempt, this.retry);
        this.log.warn({ err: error, to: what, attempt, retryInMs: delay }, 'revocation notification failed: retrying');
        await this.backOff(delay);
      }
    }
    return { outcome: 'gave_up' };
  }

  /** Waits `ms`, or less when the notifier closes meanwhile. */
  private backOff(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.sleepers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms).unref();
      this.sleepers.add(wake);
    });
  }

  /**
   * The tries to one agent, each within `timeoutMs` also over its own connection (`post`), whose timeout is
   * its owner's (the verifier's `requestTimeout`, 60 s): 8 agents that do not answer held the fan-out's
   * workers, and so the notice from the rest of the tenant, for five tries of that each. A try past its
   * deadline still goes on on that connection (it serves one request at a time), so the next try waits
   * for it and sends again only if it failed: re-sent at once, an agent answering after the deadline got
   * the notice once per try.
   */
  private triesTo(agent: RevocationAgentTarget, body: string): () => Promise<void> {
    const post = agent.post;
    if (post === undefined) return () => this.postToAgent(agent, body);
    let previous: Promise<void> | undefined;
    return () => {
      const attempt = previous === undefined ? post(body) : previous.catch(() => post(body));
      previous = attempt;
      return beforeDeadline(attempt, AbortSignal.timeout(this.timeoutMs()));
    };
  }

  private async postToAgent(agent: RevocationAgentTarget, body: string): Promise<void> {
    const tls = this.options.agentTls as NonNullable<RevocationNotifierOptions['agentTls']>;
    const ca = agent.mtlsCert ?? tls.ca;
    // Agents present self-signed certificates named by their UUID: a pinned certificate is the trust
    // anchor, so the host name is not checked against it (as the verifier's own agent connection does).
    // Without one, `agentTls.ca` vouches for every certificate it issued (a registrar's, a broker's): the
    // name is then checked, or any of them could take the notice.
    const dispatcher = new Agent({
      connect: { cert: tls.cert, key: tls.key, ...(ca === undefined ? {} : { ca }), ...(agent.mtlsCert === undefined ? {} : { checkServerIdentity: () => undefined }) },
    });
    try {
      await this.post(`${agent.url.replace(/\/+$/, '')}/v${agent.apiVersion}/notifications/revocation`, body, dispatcher);
    } finally {
      await dispatcher.close();
    }
  }

  /** One try: `deadline` ends it, the answer's body included (default: `timeoutMs` from now). */
  private post(url: string, body: string, dispatcher: Dispatcher, deadline = AbortSignal.timeout(this.timeoutMs())): Promise<void> {
    return postEnvelope(url, body, dispatcher, deadline);
  }

  private timeoutMs(): number {
    return this.options.timeoutMs ?? 10_000;
  }

}
