import type { FastifyReply, FastifyRequest } from 'fastify';
import type { DashboardQueries } from './dashboard-queries.js';

export interface DashboardEventsOptions {
  readonly queries: Pick<DashboardQueries, 'overview' | 'changedSince'>;
  readonly tenant: string | undefined;
  readonly tickMs: number;
  /** Checked before every tick; false ends the stream (an expired token). */
  readonly stillValid: () => Promise<boolean>;
  /** Called once when the stream ends. */
  readonly onClose: () => void;
}

/** Agents sent per tick at most: a page shows 50; a fleet-wide change is caught up over a few ticks. */
const CHANGES_PER_TICK = 1000;
/** Rows changed this long before the previous tick are sent again: clocks of the database and this process differ a little. */
const OVERLAP_MS = 2000;
/**
 * Bytes a tab may leave unread (beyond what the kernel buffers) before its stream is dropped rather
 * than queued without limit; its EventSource reconnects when it reads again. A tick is at most
 * `CHANGES_PER_TICK` rows of a few hundred bytes.
 */
export const MAX_QUEUED_BYTES = 1024 * 1024;

/**
 * Server-sent events for one dashboard tab: every tick an `overview` event (the overview's counts)
 * and an `agents` event with the agents whose row changed, or whose PASS or `alive` went stale, since
 * the tick before, both JSON. One query at a time per tab; a query that fails is skipped (the next
 * tick tries again). The stream ends when its connection closes (also before the stream started:
 * `onClose` is then called at once), its token expires, or its client leaves more than
 * `MAX_QUEUED_BYTES` unread.
 */
export function streamDashboardEvents(request: FastifyRequest, reply: FastifyReply, options: DashboardEventsOptions): void {
  reply.hijack();
  const out = reply.raw;
  // A client gone while its credential was checked: its 'close' was emitted before anyone listened.
  if (out.destroyed || request.raw.socket.destroyed) {
    options.onClose();
    return;
  }
  let since = new Date(Date.now() - OVERLAP_MS);
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  const close = (): void => {
    if (closed) return;
    closed = true;
    options.onClose();
    clearTimeout(timer);
    out.end();
  };
  out.once('close', close);
  out.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    connection: 'keep-alive',
  });
  out.write('retry: 2000\n\n');
  const tick = async (): Promise<void> => {
    if (!(await options.stillValid()) || closed) {
      close();
      return;
    }
    if (out.writableLength > MAX_QUEUED_BYTES) {
      request.log.info({ queued: out.writableLength }, 'dashboard events: the client does not read; stream dropped');
      // end() would wait for the queue to drain: the client is not reading it.
      out.destroy();
      close();
      return;
    }
    const started = new Date();
    try {
      const [overview, agents] = await Promise.all([options.queries.overview(options.tenant), options.queries.changedSince(options.tenant, since, started, CHANGES_PER_TICK)]);
      if (closed) return;
      out.write(`event: overview\ndata: ${JSON.stringify(overview)}\n\n`);
      if (agents.length > 0) out.write(`event: agents\ndata: ${JSON.stringify(agents)}\n\n`);
      since = new Date(started.getTime() - OVERLAP_MS);
    } catch (error) {
      request.log.warn({ err: error }, 'dashboard events: query failed');
    }
    if (!closed) timer = setTimeout(() => void tick(), options.tickMs);
  };
  void tick();
}
