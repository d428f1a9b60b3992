import { expect } from 'chai';
import { pino } from 'pino';
import { initialAgentState, type AgentAttestationState } from '../../lib/attestation/agent-state.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { compileSeverityPolicy } from '../../lib/attestation/severity.js';
import { turnsRevoked } from '../../lib/verifier/failure-announcer.js';
import { PushLiveness, type PushLivenessDeps } from '../../lib/verifier/push/push-liveness.js';
import type { PushVerdictStore } from '../../lib/verifier/push/push-verdict-store.js';
import type { PushSessions } from '../../lib/verifier/push/push-sessions.js';
import type { VerifierAgentRecord } from '../../lib/verifier/verifier-agent-record.js';

/** What the sweep handed the verdict store. */
interface StoreCall {
  readonly record: VerifierAgentRecord;
  readonly state: AgentAttestationState;
  readonly expectedVersion: string;
}

/**
 * The silence sweep hands `PushVerdictStore` the record its decision was made from, with that record's
 * version: the store stores the FAIL only over that version, and stores it at once (`turnsRevoked`) only
 * when that record was not failed already. A sweep that passed another record (a fresher read, or the
 * decided state as both sides) would store a timed-out agent's failure a batch window late or over a
 * row it did not judge.
 */
describe('push liveness: the sweep stores each silence failure from the record it decided from', function () {
  it('passes the read record and its version, and the failure turns that record failed', async function () {
    const nowSeconds = Date.now() / 1000;
    const silentRecord = {
      agentId: 'silent-agent',
      owner: 'me',
      enrolledAt: nowSeconds - 120,
      state: { ...initialAgentState(OperationalState.GET_QUOTE), lastReceivedQuote: nowSeconds - 60, attestationCount: 4 },
    } as unknown as VerifierAgentRecord;
    const calls: StoreCall[] = [];
    const deps: PushLivenessDeps = {
      repository: {
        silentAgents: () => Promise.resolve(['silent-agent']),
        agentWithVersion: (agentId: string) => Promise.resolve(agentId === 'silent-agent' ? { record: silentRecord, agentVersion: 'v-read' } : undefined),
        attestingAgentCount: () => Promise.resolve(1),
      },
      verdicts: {
        store: (record: VerifierAgentRecord, state: AgentAttestationState, _history: unknown, { expectedVersion }: { expectedVersion: string }) => {
          calls.push({ record, state, expectedVersion });
          return Promise.resolve({ stored: true, agentVersion: undefined });
        },
      } as unknown as PushVerdictStore,
      sessions: { sweep: () => Promise.resolve() } as unknown as PushSessions,
      isJudging: () => false,
      outage: { latest: () => undefined, close: () => undefined },
      slowHashes: { busy: () => undefined, hashingSeconds: () => 0 },
      log: pino({ level: 'silent' }),
      now: Date.now,
    };
    const sweep = new PushLiveness(deps, { verifierId: 'default', timeout: 3, firstAttestationGrace: 3, severityPolicy: compileSeverityPolicy(), everySeconds: 3600 });
    await sweep.tick();
    await sweep.close();
    expect(calls).to.have.length(1);
    const [call] = calls as [StoreCall];
    expect(call.record).to.equal(silentRecord);
    expect(call.expectedVersion).to.equal('v-read');
    expect(call.state.operationalState).to.equal(OperationalState.FAILED);
    expect(turnsRevoked(call.record.state.operationalState, call.state.operationalState), 'stored at once').to.equal(true);
  });
});
