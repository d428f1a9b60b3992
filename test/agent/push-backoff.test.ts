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

describe('push agent back-off', function () {
  it('the push agent keeps Keylime\'s defaults: 10 s doubling, five doublings at most, never above 300 s', async function () {
    const agent = agentWith();
    try {
      expect([1, 2, 3, 4, 5, 6, 7, 20].map((n) => agent.delayAfter(n))).to.deep.equal([10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000, 300_000]);
    } finally {
      await agent.close();
    }
  });

  it('the push agent\'s options replace the defaults they name; maxRetries stops the doubling below maxDelayMs', async function () {
    const agent = agentWith({ initialDelayMs: 100, maxDelayMs: 10_000, maxRetries: 2 });
    try {
      expect([1, 2, 3, 4, 9].map((n) => agent.delayAfter(n))).to.deep.equal([100, 200, 400, 400, 400]);
    } finally {
      await agent.close();
    }
  });
});
