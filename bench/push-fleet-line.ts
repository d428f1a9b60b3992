import type { PushWindow } from './verifier-push-bench.js';

/**
 * What held a push window's rate, in one line: the simulated fleet's share of a core and its event-loop
 * delay (a fleet starved of CPU sends late), and an agent's mean cycle. A push agent waits
 * `seconds_to_next_attestation` (`quote_interval`) after the verifier's 202, so its cycle is that wait
 * plus the time from its capabilities to the 202; at N agents the window can hold no more than
 * N ÷ cycle attestations a second, whoever has CPU to spare. Pull's rounds start on a grid instead, so
 * pull reaches N ÷ `quote_interval`.
 */
export function pushFleetLine(agents: number, seconds: number, quoteInterval: number, window: Pick<PushWindow, 'attestations' | 'fleetCpu' | 'fleetLoopDelayMs'>): string {
  const delay = window.fleetLoopDelayMs;
  const fleet = `push fleet at ${agents} agents: ${(100 * window.fleetCpu).toFixed(0)} % of a core, event-loop delay p99 ${delay.p99.toFixed(0)} ms (max ${delay.max.toFixed(0)} ms)`;
  if (window.attestations === 0) return `${fleet}, no attestation`;
  const cycle = (agents * seconds) / window.attestations;
  return `${fleet}, an agent's cycle ${cycle.toFixed(2)} s (the ${quoteInterval} s wait + ${(cycle - quoteInterval).toFixed(2)} s from its capabilities to the 202)`;
}
