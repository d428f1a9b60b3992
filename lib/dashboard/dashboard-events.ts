import type { FastifyReply, FastifyRequest } from 'fastify';
import { NODES_PAGE_SIZE, type DashboardQueries } from './dashboard-queries.js';

export interface DashboardEventsOptions {
  readonly queries: Pick<DashboardQueries, 'overview' | 'nodesByIds'>;
  readonly tenant: string | undefined;
  /** The nodes the tab shows (`?agent=` of the request), at most `MAX_WATCHED_NODES`. */
  readonly watched: readonly string[];
  readonly tickMs: number;
  /** Checked before every tick; false ends the stream (an expired token). */
  readonly stillValid: () => Promise<boolean>;
  /** Called once when the stream ends. */
  readonly onClose: () => void;
}

/** Nodes one stream may watch: a page of the node table. */
export const MAX_WATCHED_NODES = NODES_PAGE_SIZE;
/**
 * Bytes a tab may leave unread (beyond what the kernel buffers) before its stream is dropped rather
 * than queued without limit; its EventSource reconnects when it reads again. A tick is at most
 * `MAX_WATCHED_NODES` rows of a few hundred bytes.
 */
export const MAX_QUEUED_BYTES = 1024 * 1024;

/** The headers of a live-update stream (also of the answer to a `HEAD` of it, which opens none). */
export const EVENT_STREAM_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
} as const;

/**
 * Server-sent events for one dashboard tab: every tick an `overview` event (the overview's counts)
 * and an `agents` event with the watched nodes whose row, as shown now, differs from what this stream
 * last sent (all of them on the first tick), and a `gone` event with the ids of watched nodes that are
 * not there (deleted, or never this viewer's to read), once each, all JSON. A read that fails (the
 * database down) is said once per outage in an `unavailable` event (`"rows"` or `"overview"`): the tab
 * shows its rows and counts as unknown, not as last read; once the rows are read again every one is
 * sent (or said gone) anew. Every tick ends with a `tick` event (its period in ms), sent whatever
 * changed: `dashboard.js` shows its rows as unknown when it hears none for a while. Each tick reads the watched rows by their key
 * and judges them at its own time, so a row that failed, or whose PASS or `alive` went stale (which
 * writes nothing), is sent however many other rows of the fleet changed. One tick at a time per tab;
 * the overview (shared: `queries.overview` is `SharedOverview` in the routes) is sent when it arrives,
 * without holding the rows back, and asked again at the first tick after; a read that fails is
 * tried again at the next tick. The stream ends when its connection
 * closes (also before the stream started: `onClose` is then called at once), its token expires, or
 * its client leaves more than `MAX_QUEUED_BYTES` unread, or when the function returned is called
 * (its slot was taken back).
 */
export function streamDashboardEvents(request: FastifyRequest, reply: FastifyReply, options: DashboardEventsOptions): () => void {
  reply.hijack();
  const out = reply.raw;
  // A client gone while its credential was checked: its 'close' was emitted before anyone listened.
  if (out.destroyed || request.raw.socket.destroyed) {
    options.onClose();
    return () => {};
  }
  /** Per watched node, the JSON this stream last sent for it. */
  const sent = new Map<string, string>();
  /** Watched nodes this stream said are gone (and has not read since). */
  const saidGone = new Set<string>();
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  let overviewPending = false;
  /** What this stream said it cannot read now (`unavailable` events), each said once per outage. */
  const unavailable = new Set<'overview' | 'rows'>();
  const sayUnavailable = (part: 'overview' | 'rows'): void => {
    if (closed || unavailable.has(part)) return;
    unavailable.add(part);
    out.write(`event: unavailable\ndata: ${JSON.stringify(part)}\n\n`);
  };
  const close = (): void => {
    if (closed) return;
    closed = true;
    options.onClose();
    clearTimeout(timer);
    out.end();
  };
  out.once('close', close);
  out.writeHead(200, { ...EVENT_STREAM_HEADERS, connection: 'keep-alive' });
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
    // The overview is shared and read one at a time (SharedOverview): it may take longer than a tick,
    // so it is sent when it arrives and asked again only once it did; the rows do not wait for it.
    if (!overviewPending) {
      overviewPending = true;
      void options.queries
        .overview(options.tenant)
        .then(
          (overview) => {
            unavailable.delete('overview');
            if (!closed) out.write(`event: overview\ndata: ${JSON.stringify(overview)}\n\n`);
          },
          (error: unknown) => {
            request.log.warn({ err: error }, 'dashboard events: overview query failed');
            sayUnavailable('overview');
          },
        )
        .finally(() => (overviewPending = false));
    }
    try {
      const rows = await options.queries.nodesByIds(options.tenant, options.watched);
      if (closed) return;
      unavailable.delete('rows');
      const changed: string[] = [];
      for (const row of rows) {
        const json = JSON.stringify(row);
        if (sent.get(row.agentId) === json) continue;
        sent.set(row.agentId, json);
        changed.push(json);
      }
      if (changed.length > 0) out.write(`event: agents\ndata: [${changed.join(',')}]\n\n`);
      // A watched row not read now was deleted: its tab would go on showing it as rendered or last sent (a
      // PASS, green). Every watched id, not only those sent: a node deleted before this stream's first read
      // was rendered by the page all the same. Said once; a node enrolled again is sent as a row again.
      const read = new Set(rows.map((row) => row.agentId));
      const gone = options.watched.filter((agentId) => !read.has(agentId) && !saidGone.has(agentId));
      for (const agentId of read) saidGone.delete(agentId);
      for (const agentId of gone) {
        sent.delete(agentId);
        saidGone.add(agentId);
      }
      if (gone.length > 0) out.write(`event: gone\ndata: ${JSON.stringify(gone)}\n\n`);
    } catch (error) {
      request.log.warn({ err: error }, 'dashboard events: query failed');
      // The tab shows its rows as unknown until they are read again: then every one is sent (or said gone) anew.
      if (!unavailable.has('rows')) {
        sent.clear();
        saidGone.clear();
      }
      sayUnavailable('rows');
    }
    if (closed) return;
    // Said every tick, whatever changed: a tab that hears none for a while (the verifier's host gone
    // without closing the connection, a stalled process) stops vouching for its rows.
    out.write(`event: tick\ndata: ${options.tickMs}\n\n`);
    timer = setTimeout(() => void tick(), options.tickMs);
  };
  void tick();
  return () => {
    out.destroy();
    close();
  };
}
