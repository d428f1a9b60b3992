import { expect } from 'chai';
import { pino } from 'pino';
import { fileAgentLogs } from '../../lib/agent/agent-logs.js';
import { PushAgent } from '../../lib/agent/push/push-agent.js';
import type { AkInfo, Tpm } from '../../lib/tpm-access/tpm-port.js';

function agentWith(backoff?: { initialDelayMs?: number; maxDelayMs?: number; maxRetries?: number }): PushAgent {
  return new PushAgent({
    uuid: 'd432fbb3-d2f1-4a97-9ef7-75bd81c00000',
    verifierUrl: 'http://127.0.0.1:1',
    tpm: {} as Tpm,
    ak: {} as AkInfo,
    logs: fileAgentLogs(undefined, undefined),
    bootTime: new Date(0),
    log: pino({ level: 'silent' }),
    ...(backoff === undefined ? {} : { backoff }),
  });
}

/** Whether each of 50 draws of `agent.delayAfter(failures)` is within 0.75 … 1.25 times `computedMs`. */
function drawnAround(agent: PushAgent, failures: number, computedMs: number): boolean {
  return Array.from({ length: 50 }, () => agent.delayAfter(failures)).every((ms) => ms >= 0.75 * computedMs && ms <= 1.25 * computedMs);
}

describe('push agent back-off', function () {
  it('the push agent keeps Keylime\'s defaults: 10 s doubling, five doublings at most, never above 300 s (each drawn within ±25 %)', async function () {
    const agent = agentWith();
    try {
      const computed = [10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000, 300_000];
      expect([1, 2, 3, 4, 5, 6, 7, 20].filter((n, i) => !drawnAround(agent, n, computed[i] ?? Number.NaN)), 'failures whose waits fall outside ±25 %').to.deep.equal([]);
      expect(new Set(Array.from({ length: 50 }, () => agent.delayAfter(1))).size, 'distinct waits in 50 draws after one failure').to.be.above(1);
    } finally {
      await agent.close();
    }
  });

  it('the push agent\'s options replace the defaults they name; maxRetries stops the doubling below maxDelayMs', async function () {
    const agent = agentWith({ initialDelayMs: 2_000, maxDelayMs: 100_000, maxRetries: 2 });
    try {
      const computed = [2_000, 4_000, 8_000, 8_000, 8_000];
      expect([1, 2, 3, 4, 9].filter((n, i) => !drawnAround(agent, n, computed[i] ?? Number.NaN)), 'failures whose waits fall outside ±25 %').to.deep.equal([]);
    } finally {
      await agent.close();
    }
  });

  it('no option makes a failure wait shorter than 1 s (an initial delay of 0 or NaN was a hot retry loop)', async function () {
    for (const backoff of [{ initialDelayMs: 0 }, { initialDelayMs: 100, maxDelayMs: 200 }, { initialDelayMs: Number.NaN }, { maxDelayMs: 0 }]) {
      const agent = agentWith(backoff);
      try {
        expect(Math.min(...[1, 2, 3, 9].map((n) => agent.delayAfter(n))), JSON.stringify(backoff)).to.equal(1_000);
      } finally {
        await agent.close();
      }
    }
  });
});
