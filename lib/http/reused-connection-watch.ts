import type { Agent } from 'node:http';
import type { Socket } from 'node:net';
import { AxiosError } from 'axios';

/** RFC 9110 §9.2.2: methods whose repetition has the effect of one request. POST is not among them. */
const IDEMPOTENT_METHODS = new Set(['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS']);

/** Codes of a connection the server closed or reset under a request (a hang-up is ECONNRESET too). */
const CLOSED_UNDER_REQUEST = new Set(['ECONNRESET', 'EPIPE']);

/**
 * Tells, for the sockets of one keep-alive agent, whether a failed request on a reused connection got
 * any byte of its answer: the bytes each socket had read when it went back to the pool are remembered.
 * (`bytesRead` of a TLS socket counts decrypted bytes, so a TLS close alert is no answer byte.)
 */
export class ReusedConnectionWatch {
  private readonly readWhenFreed = new WeakMap<Socket, number>();

  constructor(agent: Agent) {
    agent.on('free', (socket: Socket) => this.readWhenFreed.set(socket, socket.bytesRead));
  }

  /**
   * The server closed or reset the kept-alive connection `error`'s request went out on before a single
   * byte of the answer came: node's keep-alive race (the server's idle timeout fired as the request
   * left). A server that was killed or closed mid-request looks the same and may have acted on it,
   * which is why only an idempotent request may go out once more on a fresh connection. False for a
   * POST, a fresh connection, any other failure, and after any answer byte.
   */
  closedUnanswered(method: string, error: unknown): boolean {
    if (!(error instanceof AxiosError) || !IDEMPOTENT_METHODS.has(method.toUpperCase()) || !CLOSED_UNDER_REQUEST.has(error.code ?? '')) {
      return false;
    }
    const request = error.request as { reusedSocket?: boolean; socket?: Socket | null; res?: unknown } | undefined;
    if (request?.reusedSocket !== true || request.res != null || error.response !== undefined) {
      return false;
    }
    const socket = request.socket;
    const before = socket == null ? undefined : this.readWhenFreed.get(socket);
    return before !== undefined && socket?.bytesRead === before;
  }
}
