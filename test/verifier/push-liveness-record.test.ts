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

/**
 * A session-hash gate kept busy without end (an enrolled node can open sessions over and over) counts
 * as the verifier's down time only up to `BUSY_CAP_FACTOR` (4) hashes per attesting agent at the gate's
 * speed: an agent that stopped attesting is still failed at its last attestation + the outage's bound
 * (`outageExcuseLimit`: 2 × timeout + grace + 375 s + that cap). The sweep reads the gate and the
 * database outage on the database's clock, the one the agents' last attestations are dated on.
 */
describe('push liveness: a gate kept busy without end cannot keep a stopped agent from being failed', function () {
  it('fails the agent past its bound with the cap from the attesting agents, spares it before, and asks the gate on the database clock', async function () {
    // The database's clock an hour ahead of this process's.
    const dbNowMs = Date.now() + 3_600_000;
    const dbNow = dbNowMs / 1000;
    // timeout 3, grace 3, 10 attesting agents at 1 s a hash on 1 thread: 2 × 3 + 3 + 375 + 4 × 10 = 424 s.
    const bound = 2 * 3 + 3 + 375 + 4 * 10;
    const records = new Map(
      [['past-bound', bound + 5], ['within-bound', bound - 20]].map(([agentId, silentFor]) => [
        agentId as string,
        { agentId, owner: 'me', enrolledAt: dbNow - 10_000, state: { ...initialAgentState(OperationalState.GET_QUOTE), lastReceivedQuote: dbNow - (silentFor as number), attestationCount: 4 } } as unknown as VerifierAgentRecord,
      ]),
    );
    const failed: string[] = [];
    const lines: { msg: string; sparedUntil?: string }[] = [];
    const asked: { gate: number | undefined; outage: number | undefined; verifierId: string | undefined } = { gate: undefined, outage: undefined, verifierId: undefined };
    const deps: PushLivenessDeps = {
      repository: {
        silentAgents: () => Promise.resolve([...records.keys()]),
        agentWithVersion: (agentId: string) => Promise.resolve(records.has(agentId) ? { record: records.get(agentId) as VerifierAgentRecord, agentVersion: 'v' } : undefined),
        attestingAgentCount: (verifierId: string) => {
          asked.verifierId = verifierId;
          return Promise.resolve(10);
        },
      },
      verdicts: {
        store: (record: VerifierAgentRecord) => {
          failed.push(record.agentId);
          return Promise.resolve({ stored: true, agentVersion: undefined });
        },
      } as unknown as PushVerdictStore,
      sessions: { sweep: () => Promise.resolve() } as unknown as PushSessions,
      isJudging: () => false,
      outage: {
        latest: (now?: number) => {
          asked.outage = now;
          return undefined;
        },
        close: () => undefined,
      },
      // Busy for a day and still refusing.
      slowHashes: {
        busy: (now?: number) => {
          asked.gate = now;
          return { from: dbNow - 86_400, to: (now ?? Date.now()) / 1000, downSeconds: 86_400 };
        },
        hashingSeconds: (hashes: number) => hashes,
      },
      log: pino({ level: 'warn' }, { write: (line: string) => void lines.push(JSON.parse(line) as { msg: string; sparedUntil?: string }) }),
      now: () => dbNowMs,
    };
    const sweep = new PushLiveness(deps, { verifierId: 'this-verifier', timeout: 3, firstAttestationGrace: 3, severityPolicy: compileSeverityPolicy(), everySeconds: 3600 });
    await sweep.tick();
    expect(failed).to.deep.equal(['past-bound']);
    await sweep.tick();
    await sweep.close();
    // The excuse is said once per silence, with the time until which it spares agents, not at every sweep.
    const said = lines.filter((line) => line.msg.startsWith('push agents silent while this verifier could not serve them'));
    expect(said).to.have.length(1);
    expect(Date.parse(said[0]!.sparedUntil!)).to.be.greaterThan(dbNowMs);
    expect(asked.verifierId).to.equal('this-verifier');
    expect(asked.gate, 'the gate asked on the database clock').to.equal(dbNowMs);
    expect(asked.outage, 'the database outage asked on the database clock').to.equal(dbNowMs);
  });
});
