import type { Node } from '../../interfaces/node.js';
import type { IronlimeSettings } from '../../interfaces/settings.js';
import type { Task, TaskLogger } from '../../interfaces/task.js';

/** A logger that drops everything, for tasks built without one. */
export const SILENT_LOGGER: TaskLogger = Object.freeze({
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
});

export interface TaskOptions {
  readonly logger?: TaskLogger;
  /** Abort it to cancel the step; defaults to a signal that never aborts. */
  readonly signal?: AbortSignal;
}

/** Builds the `Task` a hook or driver receives for one step on `node`. */
export function createTask(node: Node, config: IronlimeSettings, options: TaskOptions = {}): Task {
  return Object.freeze({
    node,
    config,
    logger: options.logger ?? SILENT_LOGGER,
    signal: options.signal ?? new AbortController().signal,
  });
}
