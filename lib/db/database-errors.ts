import { PREPARED_STATE_LOST } from './postgres-bounds.js';

/** Errors of Node's sockets that mean the database could not be reached. */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
/** SQLSTATEs of a server going away: admin_shutdown, crash_shutdown, cannot_connect_now (class 08 is checked whole). */
const SHUTDOWN_STATES = new Set(['57P01', '57P02', '57P03']);
/**
 * SQLSTATEs of a statement the server refused for now, not for what it says: serialization_failure,
 * deadlock_detected, lock_not_available (lock_timeout), query_canceled (statement_timeout).
 * Class 53 (insufficient resources: too many connections, out of memory, disk full) is checked whole.
 */
const RETRY_LATER_STATES = new Set(['40001', '40P01', '55P03', '57014']);

function codeOf(error: Error): unknown {
  return (error as { code?: unknown }).code;
}

/**
 * True for an error that says the database could not be reached (a socket error, a connection the
 * server or the network closed, SQLSTATE class 08 or a shutdown), not for an error of a statement
 * that reached it: a constraint, a bug or a missing row must not pass for an outage, which delays push
 * agents' silence failures (`DatabaseOutage`).
 */
export function isConnectionFailure(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = codeOf(error);
  if (typeof code === 'string' && (NETWORK_CODES.has(code) || SHUTDOWN_STATES.has(code) || /^08[0-9A-Z]{3}$/.test(code))) return true;
  // node-postgres' own errors for a connection lost carry no code.
  return code === undefined && /connection terminated|not queryable/i.test(error.message);
}

/**
 * True for an error the same statement may not meet again: the database unreachable
 * (`isConnectionFailure`), a connection not opened in time (node-postgres' connect bound, knex's
 * acquire bound), a refusal for now (`RETRY_LATER_STATES`, class 53), or a connection whose prepared
 * statements are lost (`PREPARED_STATE_LOST`: the pool retires it, a retry runs on a fresh one).
 * False for the rest — a constraint, a bad row, a bug — which fail the same way however often they run.
 */
export function isTransientDatabaseError(error: unknown): boolean {
  if (isConnectionFailure(error)) return true;
  if (!(error instanceof Error)) return false;
  const code = codeOf(error);
  if (typeof code === 'string') return RETRY_LATER_STATES.has(code) || PREPARED_STATE_LOST.has(code) || code.startsWith('53');
  return error.name === 'KnexTimeoutError' || /^timeout expired$/i.test(error.message);
}

/**
 * True for a statement the database refused for the values it carries: SQLSTATE class 22 (data
 * exception: a value out of range, a character the encoding refuses) or 23 (integrity constraint
 * violation). The same values are refused however often they are sent, so a write refused so is not
 * worth trying again — unlike a statement every row fails (class 42, a schema the code does not
 * match), which only says the database cannot be written for now.
 */
export function isValueRefusal(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = codeOf(error);
  return typeof code === 'string' && /^2[23][0-9A-Z]{3}$/.test(code);
}
