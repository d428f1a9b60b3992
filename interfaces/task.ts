import type { Node } from './node.js';
import type { IronlimeSettings } from './settings.js';

/**
 * The structured logger a task carries. A pino `Logger` satisfies it, and so does any object with
 * these four methods; messages are always a context object plus a sentence.
 */
export interface TaskLogger {
  debug(context: Record<string, unknown>, message: string): void;
  info(context: Record<string, unknown>, message: string): void;
  warn(context: Record<string, unknown>, message: string): void;
  error(context: Record<string, unknown>, message: string): void;
}

/**
 * One unit of work on one node, like Ironic's `TaskManager` task: the node as read at the start of
 * the step, the frozen configuration, a logger, and a signal the orchestrator aborts to cancel
 * (drivers stop waiting and reject with `signal.reason`).
 */
export interface Task {
  readonly node: Node;
  readonly config: IronlimeSettings;
  readonly logger: TaskLogger;
  readonly signal: AbortSignal;
}
