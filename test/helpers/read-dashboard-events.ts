import { connect } from 'node:tls';

/** One dashboard row as a live-update `agents` event carries it (the fields these tests read). */
export interface SentRow {
  readonly agentId: string;
  readonly status: string;
  readonly tone: string;
  readonly tableState: string;
}

/** The text a client of `path` (`/dashboard/events…`) reads in `ms` with `token` in its cookie: the stream's start and its first ticks. */
export function readDashboardEvents(url: string, ca: string, path: string, token: string, ms: number): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    let text = '';
    const socket = connect({ host: hostname, port: Number(port), ca, servername: 'localhost' }, () => {
      socket.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\nCookie: __Host-ironlime_token=${token}\r\n\r\n`);
    });
    socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
    socket.on('error', reject);
    setTimeout(() => {
      socket.destroy();
      resolve(text);
    }, ms);
  });
}

/** Every row the `agents` events of `text` carried, in the order sent. */
export function sentRows(text: string): SentRow[] {
  return [...text.matchAll(/event: agents\ndata: (.*)\n/g)].flatMap((match) => JSON.parse(match[1] as string) as SentRow[]);
}
