import type { FastifyReply, FastifyRequest } from 'fastify';
import type { DashboardQueries } from './dashboard-queries.js';

export interface DashboardEventsOptions {
  readonly queries: DashboardQueries;
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
 * Server-sent events for one dashboard tab: every tick an `overview` event (the overview's counts)
 * and an `agents` event with the agents whose row changed, or whose PASS or `alive` went stale, since
 * the tick before, both JSON. One
 * query at a time per tab; a query that fails is skipped (the next tick tries again), and the
 * stream ends when the client goes or its token expires.
 */
export function streamDashboardEvents(request: FastifyRequest, reply: FastifyReply, options: DashboardEventsOptions): void {
  reply.hijack();
  const out = reply.raw;
  out.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    connection: 'keep-alive',
  });
  out.write('retry: 2000\n\n');
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
  request.raw.once('close', close);
  const tick = async (): Promise<void> => {
    if (!(await options.stillValid())) {
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
