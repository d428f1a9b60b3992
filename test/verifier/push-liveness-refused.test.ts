import { expect } from 'chai';
import { pino } from 'pino';
import { initialAgentState } from '../../lib/attestation/agent-state.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { compileSeverityPolicy } from '../../lib/attestation/severity.js';
import { PushLiveness } from '../../lib/verifier/push/push-liveness.js';
import type { PushSessions } from '../../lib/verifier/push/push-sessions.js';
import type { PushVerdictStore } from '../../lib/verifier/push/push-verdict-store.js';
import { RoundRefused } from '../../lib/verifier/round-retrier.js';
import type { VerifierAgentRecord } from '../../lib/verifier/verifier-agent-record.js';

/**
 * A silence FAIL the database refuses for its values (`RoundRefused`) would be refused at every
 * sweep: it must not end the sweep, or the silent agents listed after it would never be failed.
 */
describe('push liveness: a silence failure refused for its values does not stop the sweep', function () {
  it('logs it and fails the next silent agent', async function () {
    const nowSeconds = Date.now() / 1000;
    const silent = (agentId: string) =>
      ({
        agentId,
        owner: 'me',
        enrolledAt: nowSeconds - 120,
        state: { ...initialAgentState(OperationalState.GET_QUOTE), lastReceivedQuote: nowSeconds - 60, attestationCount: 4 },
      }) as unknown as VerifierAgentRecord;
    const stores: string[] = [];
    const verdicts = {
      store: (record: VerifierAgentRecord) => {
        stores.push(record.agentId);
        return record.agentId === 'refused-agent'
          ? Promise.reject(new RoundRefused('23514', { cause: new Error('violates check constraint') }))
          : Promise.resolve({ stored: true, agentVersion: undefined });
      },
    } as unknown as PushVerdictStore;
    const lines: Record<string, unknown>[] = [];
    const sweep = new PushLiveness(
      {
        repository: {
          silentAgents: () => Promise.resolve(['refused-agent', 'next-agent']),
          agentWithVersion: (agentId: string) => Promise.resolve({ record: silent(agentId), agentVersion: `v-${agentId}` }),
          attestingAgentCount: () => Promise.resolve(2),
        },
        verdicts,
        sessions: { sweep: () => Promise.resolve() } as unknown as PushSessions,
        isJudging: () => false,
        outage: { latest: () => undefined, close: () => undefined },
        slowHashes: { busy: () => undefined, hashingSeconds: () => 0 },
        log: pino({ level: 'warn' }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) }),
        now: Date.now,
      },
      { verifierId: 'default', timeout: 3, firstAttestationGrace: 3, severityPolicy: compileSeverityPolicy(), everySeconds: 3600 },
    );
    await sweep.tick();
    await sweep.close();
    expect(stores).to.deep.equal(['refused-agent', 'next-agent']);
    expect(lines.map((line) => [line['agentId'], line['msg']])).to.deep.equal([
      ['refused-agent', 'push agent timed out, but the database refused its failure: not recorded'],
      ['next-agent', 'push agent timed out'],
    ]);
  });
});
