import { utimesSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';

/** A message from `lockPgliteFolder`: a lock file to start or stop marking. */
export interface LockMarkerMessage {
  readonly mark?: string;
  readonly unmark?: string;
}

/**
 * The thread that marks the PGlite lock files of its process as in use (their modification time)
 * every `workerData` ms, whatever the main thread is busy with (`pglite-folder-lock.ts`).
 */
const port = parentPort;
if (port === null) {
  throw new Error('pglite-lock-marker.js runs as a worker thread of lockPgliteFolder');
}
const files = new Set<string>();
port.on('message', (message: LockMarkerMessage) => {
  if (message.mark !== undefined) files.add(message.mark);
  if (message.unmark !== undefined) files.delete(message.unmark);
});
port.unref();
setInterval(() => {
  const now = new Date();
  for (const file of files) {
    try {
      utimesSync(file, now, now);
    } catch {
      // Marked again at the next turn; a file gone meanwhile is released.
    }
  }
}, workerData as number);
