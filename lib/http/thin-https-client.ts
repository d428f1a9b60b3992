import { isIP } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { BadRemoteReplyError, ServiceUnreachableError } from './client-errors.js';
import { Http1ParseError, Http1ResponseParser, type Http1Response } from './http1-response-parser.js';
import { keylimeTlsConnectOptions, type KeylimeClientTls } from './keylime-client-tls.js';
import { replyEnvelope } from './keylime-reply.js';
import { classify } from './keylime-transport-errors.js';
import { readJsonBody, type JsonBodyReader } from './repeated-member-json.js';
import type { ReplyBudget, ReplyHold } from './reply-budget.js';
import { JsonReplyRefused, OFF_THREAD_REPLY_BYTES, type OffThreadJson } from './off-thread-json.js';

export interface ThinHttpsClientOptions {
  /** `https://<host>:<port>` (`httpsServiceUrl`); paths are appended as given. */
  readonly baseUrl: string;
  /**
   * Read again for each new connection: an object whose `cert` and `key` change (a renewed client
   * certificate, `RenewableTls`) is presented from the next request on, which then goes out on a new
   * connection instead of the kept-alive one made with the old certificate.
   */
  readonly tls: KeylimeClientTls;
  /**
   * Deadline of each whole exchange, from the moment it is asked for (time queued behind another
   * request, connecting and a resend on a fresh connection included) to the last byte of its reply.
   * One limit, not an idle timeout beside it: a server that drips its reply a byte at a time never
   * falls silent, and an idle timeout of the same length could never fire first. Callers pass what
   * their configuration calls the time one request may take.
   */
  readonly timeoutMs: number;
  /** Largest reply accepted (default 64 MiB: a first round may carry a whole IMA log). */
  readonly maxReplyBytes?: number;
  /**
   * Shared by the clients of a process: a reply is read only once its declared length fits (the
   * connection paused until then), and held until the turn of the event loop that handed its results
   * over has ended — a caller that judges them at once, as the pull round does, judges them inside it.
   */
  readonly replyBudget?: ReplyBudget;
  /**
   * Where bodies over `OFF_THREAD_REPLY_BYTES` are read (`readJsonBody`'s value, which every request's
   * reader gives as well), so that one huge reply does not hold the event loop for its `JSON.parse`.
   */
  readonly offThreadJson?: OffThreadJson;
}

/** A reply's results, with the end of its hold on the client's `replyBudget` (`requestJudged`). */
interface HeldResults {
  readonly results: unknown;
  release(): void;
}

type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';

interface Job {
  readonly method: Method;
  readonly path: string;
  readonly body: string | undefined;
  readonly reader: JsonBodyReader;
  /** The results, or `HeldResults` for a job that keeps its reply's budget hold (`requestJudged`). */
  resolve(results: unknown): void;
  reject(error: Error): void;
  /** The reply's hold on the budget goes with its results, until the caller has judged them. */
  readonly keepsHold: boolean;
  /** Sent again once, on a fresh connection, after a kept-alive one closed before answering. */
  retried: boolean;
  /** Fires `timeoutMs` after the request was asked for; cleared when it ends either way. */
  deadline: NodeJS.Timeout | undefined;
}

interface InFlight {
  readonly job: Job;
  readonly socket: TLSSocket;
  readonly parser: Http1ResponseParser;
  /** The socket had served a request before (the server may have closed it meanwhile). */
  readonly reused: boolean;
  /** Some bytes of the answer arrived. */
  received: boolean;
  /** The reply's claim on the client's `replyBudget`, once its head told its length. */
  hold: ReplyHold | undefined;
}

const DEFAULT_MAX_REPLY = 64 * 1024 * 1024;
/** A request path as it goes on the request line: visible ASCII only (the callers percent-encode). */
const REQUEST_PATH = /^\/[\x21-\x7e]*$/;

/**
 * A thin Keylime client: HTTP/1.1 written and read directly on ONE kept-alive TLS connection per
 * server (`keylimeTlsConnectOptions`: a CA or one pinned certificate, an optional client certificate),
 * one request at a time, the reply read by `Http1ResponseParser` and parsed with one `JSON.parse` (or
 * the request's `JsonBodyReader`). No `node:http` request, response or agent objects: the verifier's
 * hot path (a quote request per round) runs through it, and those were about half of its HTTP cost.
 * Resolves to the envelope's `results`, unvalidated (`{}` for 204). Errors: `ServiceUnreachableError`
 * (refused, no complete reply within `timeoutMs` — the connection is then dropped and queued requests go
 * out on a fresh one —, TLS incl. a certificate that is not the pinned one, closed before
 * the reply ended), `KeylimeHttpError` (non-2xx), `BadRemoteReplyError` (not HTTP, not an envelope,
 * too large).
 */
export class ThinHttpsClient {
  private readonly tls: KeylimeClientTls;
  private readonly endpoint: ConnectionOptions;
  private connectOptions: ConnectionOptions;
  /** The client certificate `connectOptions` (and so the open connection) presents. */
  private connectCert: string | undefined;
  private readonly hostHeader: string;
  private readonly origin: string;
  private readonly timeoutMs: number;
  private readonly maxReplyBytes: number;
  private readonly replyBudget: ReplyBudget | undefined;
  private readonly offThreadJson: OffThreadJson | undefined;
  private socket: TLSSocket | undefined;
  /** Connections opened so far: the serial of the current one. */
  private opened = 0;
  private current: InFlight | undefined;
  private readonly queue: Job[] = [];
  /** Requests whose reply came and whose body waits for, or is in, an `offThreadJson` thread: still under their deadline. */
  private readonly readingOffThread = new Set<Job>();

  constructor(options: ThinHttpsClientOptions) {
    const base = new URL(options.baseUrl);
    const host = base.hostname.replace(/^\[(.*)\]$/, '$1');
    this.tls = options.tls;
    this.endpoint = { host, port: Number(base.port || 443), ...(isIP(host) === 0 ? { servername: host } : {}) };
    this.connectCert = options.tls.cert;
    this.connectOptions = { ...keylimeTlsConnectOptions(options.tls), ...this.endpoint };
    this.hostHeader = base.host;
    this.origin = base.origin;
    this.timeoutMs = options.timeoutMs;
    this.maxReplyBytes = options.maxReplyBytes ?? DEFAULT_MAX_REPLY;
    this.replyBudget = options.replyBudget;
    this.offThreadJson = options.offThreadJson;
  }

  /** The URL a path is sent to (for error messages). */
  url(path: string): string {
    return `${this.origin}${path}`;
  }

  /**
   * Which connection is open now: a number that changes whenever a new one is opened, undefined while
   * none is. What a server answered on one connection may no longer hold on the next (it may have restarted).
   */
  connectionSerial(): number | undefined {
    return this.socket === undefined ? undefined : this.opened;
  }

  /**
   * One request; resolves to the envelope's `results`. `body` is JSON text; `reader` reads a 2xx reply's
   * JSON (default `JSON.parse` of its text). Requests queue behind each other.
   */
  request(method: Method, path: string, body?: string, reader: JsonBodyReader = readJsonBody): Promise<unknown> {
    return this.enqueue(method, path, body, reader, false);
  }

  /**
   * A GET whose results `judge` judges, perhaps over several turns of the event loop: the reply's hold on
   * the `replyBudget` lasts until `judge`'s answer settles, not only the turn that hands the results
   * over, so the budget still bounds the replies being judged at once. Resolves to `judge`'s answer.
   */
  async requestJudged<T>(path: string, judge: (results: unknown) => T | Promise<T>, reader: JsonBodyReader = readJsonBody): Promise<T> {
    const held = (await this.enqueue('GET', path, undefined, reader, true)) as HeldResults;
    try {
      return await judge(held.results);
    } finally {
      held.release();
    }
  }

  private enqueue(method: Method, path: string, body: string | undefined, reader: JsonBodyReader, keepsHold: boolean): Promise<unknown> {
    if (!REQUEST_PATH.test(path)) {
      return Promise.reject(new TypeError(`request path ${JSON.stringify(path)} has characters a request line cannot carry`));
    }
    return new Promise((resolve, reject) => {
      const job: Job = { method, path, body, reader, resolve, reject, keepsHold, retried: false, deadline: undefined };
      job.deadline = setTimeout(() => this.onDeadline(job), this.timeoutMs);
      this.queue.push(job);
      this.next();
    });
  }

  /** Closes the kept-alive connection; the request in flight and the queued ones fail (none is sent again). */
  close(): void {
    const current = this.current;
    this.current = undefined;
    current?.hold?.release();
    const failed = [...(current === undefined ? [] : [current.job]), ...this.queue.splice(0)];
    current?.socket.destroy();
    this.socket?.destroy();
    this.socket = undefined;
    for (const job of failed) {
      clearTimeout(job.deadline);
      job.reject(new ServiceUnreachableError(this.url(job.path), 'network', 'the client was closed'));
    }
  }

  private next(): void {
    if (this.current !== undefined) return;
    const job = this.queue.shift();
    if (job !== undefined) this.send(job);
  }

  private send(job: Job): void {
    if (this.socket !== undefined && !this.socket.writable) {
      // The server ended it and its close is still on its way.
      this.drop(this.socket);
    }
    if (this.tls.cert !== this.connectCert) {
      // The client certificate was renewed: the kept-alive connection still presents the old one.
      if (this.socket !== undefined) this.drop(this.socket);
      this.connectCert = this.tls.cert;
      this.connectOptions = { ...keylimeTlsConnectOptions(this.tls), ...this.endpoint };
    }
    const reused = this.socket !== undefined;
    const socket = this.socket ?? this.openSocket();
    const current: InFlight = { job, socket, parser: new Http1ResponseParser(this.maxReplyBytes), reused, received: false, hold: undefined };
    this.current = current;
    socket.ref();
    const head = `${job.method} ${job.path} HTTP/1.1\r\nHost: ${this.hostHeader}\r\nAccept: application/json\r\nConnection: keep-alive\r\n`;
    socket.write(
      job.body === undefined
        ? `${head}\r\n`
        : `${head}Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(job.body)}\r\n\r\n${job.body}`,
    );
  }

  private openSocket(): TLSSocket {
    const socket = tlsConnect(this.connectOptions);
    socket.setNoDelay(true);
    this.opened += 1;
    socket.on('data', (chunk: Buffer) => this.onData(socket, chunk));
    socket.on('error', (error: Error) => this.onEnded(socket, error));
    socket.on('close', () => this.onEnded(socket, undefined));
    this.socket = socket;
    return socket;
  }

  private onData(socket: TLSSocket, chunk: Buffer): void {
    const current = this.current;
    if (current === undefined || current.socket !== socket) {
      // Bytes nobody asked for: the connection no longer follows the protocol.
      socket.destroy();
      return;
    }
    current.received = true;
    let response: Http1Response | undefined;
    try {
      response = current.parser.feed(chunk);
    } catch (error) {
      this.drop(socket);
      this.settle(current, () => current.job.reject(this.badReply(current.job, error)));
      return;
    }
    if (response !== undefined) {
      this.complete(current, response);
    } else if (current.hold === undefined) {
      this.claimBudget(current);
    }
  }

  /** Once the head told the body's length: the reply is read on only when the budget holds it. */
  private claimBudget(current: InFlight): void {
    const declared = current.parser.declaredBodyBytes;
    if (this.replyBudget === undefined || declared === undefined) return;
    const { socket } = current;
    current.hold = this.replyBudget.reserve(declared, () => socket.resume());
    if (!current.hold.granted) socket.pause();
  }

  /**
   * No complete reply in time. A request still queued is taken out of the queue; one in flight takes
   * its connection with it (a half-read reply leaves it unusable).
   */
  private onDeadline(job: Job): void {
    const timedOut = (): void => job.reject(new ServiceUnreachableError(this.url(job.path), 'timeout', `no complete reply within ${this.timeoutMs} ms`));
    if (this.readingOffThread.delete(job)) {
      // Its body's hold is released when its read settles: the bytes wait in the reader's queue until then.
      job.reject(new ServiceUnreachableError(this.url(job.path), 'timeout', `the reply was not parsed within ${this.timeoutMs} ms of the request`));
      return;
    }
    const current = this.current;
    if (current?.job === job) {
      this.drop(current.socket);
      this.settle(current, timedOut);
      return;
    }
    const queued = this.queue.indexOf(job);
    if (queued >= 0) {
      this.queue.splice(queued, 1);
      timedOut();
    }
  }

  /** The connection failed (`error`) or closed: a reply framed by the close completes, anything else in flight fails or is sent again once. */
  private onEnded(socket: TLSSocket, error: Error | undefined): void {
    if (this.socket === socket) this.socket = undefined;
    const current = this.current;
    if (current === undefined || current.socket !== socket) return;
    const { job } = current;
    if (error === undefined) {
      let response: Http1Response;
      try {
        response = current.parser.end();
      } catch (ended) {
        this.retryOrFail(current, new ServiceUnreachableError(this.url(job.path), 'network', (ended as Error).message, { cause: ended }));
        return;
      }
      this.complete(current, response);
      return;
    }
    this.retryOrFail(current, transportError(this.url(job.path), error));
  }

  /**
   * A kept-alive connection the server closed just as a request went out is not an answer: an
   * idempotent request is sent once more on a fresh connection (what a browser does); a POST is not.
   */
  private retryOrFail(current: InFlight, error: Error): void {
    const { job } = current;
    this.current = undefined;
    current.hold?.release();
    if (current.reused && !current.received && !job.retried && job.method !== 'POST') {
      job.retried = true;
      this.send(job);
      return;
    }
    clearTimeout(job.deadline);
    job.reject(error);
    this.next();
  }

  private complete(current: InFlight, response: Http1Response): void {
    const { socket, job } = current;
    if (!response.reusable || current.parser.excess) {
      this.drop(socket);
    } else {
      // An idle kept-alive connection does not keep the process alive (as node's agent does).
      socket.unref();
    }
    const offThread = this.offThreadJson !== undefined && response.body.length > OFF_THREAD_REPLY_BYTES;
    // A body read off the event loop stays under the request's deadline while it waits for its thread.
    if (offThread) this.readingOffThread.add(job);
    this.end(current, offThread);
    this.answer(job, response, current.hold);
    this.next();
  }

  /**
   * Hands the reply's results (or its error) to the request, then `release`s its budget hold: at the
   * end of this turn, or once the caller has judged them (`keepsHold`). A large body is read off the
   * event loop first (`offThreadJson`), the hold kept meanwhile, and the request's deadline still
   * running: a reply whose body waited for a thread past it fails as a timeout (for a pull round, no
   * answer), its value, if it comes later, unused.
   */
  private answer(job: Job, response: Http1Response, hold: ReplyHold | undefined): void {
    const release = (): void => hold?.release();
    const envelope = (readBody: () => unknown): void => {
      let results: unknown;
      try {
        results = replyEnvelope(this.url(job.path), response.status, response.statusText, readBody).results;
      } catch (error) {
        job.reject(error as Error);
        release();
        return;
      }
      if (job.keepsHold) {
        job.resolve({ results, release } satisfies HeldResults);
      } else {
        job.resolve(results);
        if (hold !== undefined) setImmediate(release);
      }
    };
    if (this.readingOffThread.has(job) && this.offThreadJson !== undefined) {
      // False once the deadline failed the job: then only the hold is left to release.
      const stillWaited = (): boolean => {
        if (!this.readingOffThread.delete(job)) {
          release();
          return false;
        }
        clearTimeout(job.deadline);
        return true;
      };
      this.offThreadJson.read(response.body).then(
        (value) => {
          if (stillWaited()) envelope(() => value);
        },
        (error: unknown) => {
          if (!stillWaited()) return;
          if (error instanceof JsonReplyRefused) {
            envelope(() => {
              throw error;
            });
          } else {
            job.reject(error as Error);
            release();
          }
        },
      );
      return;
    }
    // Only a 2xx body goes to the request's reader: an error reply's is read as plain JSON, and a
    // reader that remembers (the boot logs) learns nothing from it.
    const reader = response.status >= 200 && response.status <= 299 ? job.reader : readJsonBody;
    envelope(() => reader(response.body));
  }

  /** Ends the request in flight without a reply (`outcome` fails it) and its budget hold, then starts the next queued one. */
  private settle(current: InFlight, outcome: () => void): void {
    this.end(current);
    outcome();
    current.hold?.release();
    this.next();
  }

  /** Ends the request in flight; its deadline runs on when `keepDeadline` (its body still to be read off the event loop). */
  private end(current: InFlight, keepDeadline = false): void {
    if (this.current === current) this.current = undefined;
    if (!keepDeadline) clearTimeout(current.job.deadline);
  }

  private drop(socket: TLSSocket): void {
    if (this.socket === socket) this.socket = undefined;
    socket.destroy();
  }

  private badReply(job: Job, error: unknown): Error {
    const detail = error instanceof Http1ParseError ? error.message : String(error);
    return new BadRemoteReplyError(this.url(job.path), detail);
  }
}

function transportError(url: string, error: Error): Error {
  const code = (error as { code?: string }).code ?? '';
  return new ServiceUnreachableError(url, classify(code, error.message), code === '' ? error.message : `${code}: ${error.message}`, { cause: error });
}
