import { Writable } from 'node:stream';
import { pino, type Logger, type Level } from 'pino';

/** A pino logger at `level` whose lines are parsed into `lines`, one object a line, for tests to read what a service logged. */
export function collectingLogger(level: Level, lines: Record<string, unknown>[]): Logger {
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n').filter((text) => text !== '')) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return pino({ level }, sink);
}
