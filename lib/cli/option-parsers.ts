import { InvalidArgumentError } from 'commander';
import { AGENT_ID_MAX_LENGTH, isKeylimeAgentId } from '../http/validators.js';

/** Commander parser for `--port`: 0 to 65535. */
export function port(text: string): number {
  if (!/^[0-9]{1,5}$/.test(text) || Number(text) > 65535) {
    throw new InvalidArgumentError('must be a port number from 0 to 65535');
  }
  return Number(text);
}

/** Commander reducer for repeatable options (`--tls-san a --tls-san b`). */
export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** Commander parser for a verifier history id (`--before`): a whole number from 1, up to 16 digits (ids pass 10^9 within weeks at 1,000 agents). */
export function historyId(text: string): number {
  if (!/^[1-9][0-9]{0,15}$/.test(text) || !Number.isSafeInteger(Number(text))) {
    throw new InvalidArgumentError('must be a history id: a whole number from 1');
  }
  return Number(text);
}

/**
 * Commander parser for a whole-number option from `min` to `max`: anything else (`abc`, `1.5`, `-1`)
 * is refused with the range, instead of becoming NaN (a wait that never ends, a `limit=NaN` query).
 */
export function integerBetween(min: number, max: number): (text: string) => number {
  return (text) => {
    if (!/^[0-9]{1,9}$/.test(text) || Number(text) < min || Number(text) > max) {
      throw new InvalidArgumentError(`must be an integer from ${min} to ${max}`);
    }
    return Number(text);
  };
}

/**
 * Commander parser for `--uuid`: a Keylime agent id (`isKeylimeAgentId`), refused here rather than put
 * in a request path, where an empty one named the list route (`GET /agents/`: a "bad reply") and `.` or `..` no agent.
 */
export function agentId(text: string): string {
  if (!isKeylimeAgentId(text)) {
    throw new InvalidArgumentError(`must be an agent id: 1 to ${AGENT_ID_MAX_LENGTH} letters, digits, "_", "." and "-", not only dots`);
  }
  return text;
}
