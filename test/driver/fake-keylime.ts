import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What a route answers to leave the request unanswered (a verifier that accepted the connection and stalls). */
export const NO_ANSWER = Symbol('no answer');

/** A stand-in verifier + registrar for the driver tests: records every request and answers from `routes`. */
export class FakeKeylime {
  readonly requests: string[] = [];
  /**
   * Route → a Keylime envelope's status and results (and headers to send, e.g. a `Date` of another clock),
   * a plain text body served with 200, or `NO_ANSWER`.
   */
  routes = new Map<string, (request: IncomingMessage) => [number, unknown] | [number, unknown, Record<string, string>] | string | typeof NO_ANSWER>();
  readonly server: Server = createServer((request, response) => {
    const key = `${request.method} ${(request.url ?? '').split('?')[0]}`;
    this.requests.push(key);
    request.resume();
    const answer = this.routes.get(key)?.(request) ?? [404, {}];
    if (answer === NO_ANSWER) return;
    if (typeof answer === 'string') {
      response.writeHead(200, { 'content-type': 'text/plain' }).end(answer);
      return;
    }
    const [status, results, headers] = answer;
    response.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify({ code: status, status: 'x', results }));
  });
  url = '';

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}
