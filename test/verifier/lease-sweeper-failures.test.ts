import { expect } from 'chai';
import { pino } from 'pino';
import { initialAgentState } from '../../lib/attestation/agent-state.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { LeaseSweeper, type LeaseSweeperOptions, type SweptAgents } from '../../lib/verifier/lease-sweeper.js';
import type { PolledAgent } from '../../lib/verifier/polled-agent.js';
import type { VerdictStore } from '../../lib/verifier/verdict-store.js';
import type { VerifierAgentRecord } from '../../lib/verifier/verifier-agent-record.js';
import { VerifierHealth } from '../../lib/verifier/verifier-health.js';

function record(agentId: string, state: OperationalState): VerifierAgentRecord {
  return { agentId, owner: 'me', state: initialAgentState(state) } as unknown as VerifierAgentRecord;
}

/** The sweeper over stand-in repositories: `overrides` replace their answers; what it adopts, drops, wakes and re-reads is recorded. */
function sweeperWith(
  overrides: Partial<Record<'claimFree' | 'delete' | 'releaseAgents' | 'population' | 'notOwnedBy', (...args: unknown[]) => Promise<unknown>>>,
  held: readonly string[] = [],
) {
  const adopted: string[] = [];
  const dropped: string[] = [];
  const woken: string[] = [];
  const reread: string[] = [];
  const agents = new Map<string, PolledAgent>(held.map((agentId) => [agentId, { enrolment: { agentId }, running: false } as unknown as PolledAgent]));
  const options = {
    repository: {
      leases: {
        reclaimOwn: () => Promise.resolve([]),
        renewLeases: () => Promise.resolve(0),
        notOwnedBy: overrides.notOwnedBy ?? (() => Promise.resolve([])),
        claimFree: overrides.claimFree ?? (() => Promise.resolve([])),
        releaseAgents: overrides.releaseAgents ?? (() => Promise.resolve()),
      },
      delete: overrides.delete ?? (() => Promise.resolve(true)),
    },
    processes: {
      beat: () => Promise.resolve(),
      population: overrides.population ?? (() => Promise.resolve({ liveProcesses: 1, claimableAgents: 3 })),
    },
    health: new VerifierHealth(),
    verifierId: 'default',
    owner: 'me',
    leaseSeconds: 3600,
    log: pino({ level: 'silent' }),
  } as unknown as LeaseSweeperOptions;
  const scheduler: SweptAgents = {
    agents,
    verdicts: { isWaiting: () => false, waitingAgents: () => [] } as unknown as VerdictStore,
    isClosed: () => false,
    adopt: (r) => {
      adopted.push(r.agentId);
      return Promise.resolve();
    },
    drop: (agentId) => {
      dropped.push(agentId);
      agents.delete(agentId);
    },
    wake: (agentId) => {
      woken.push(agentId);
    },
    reconcile: (agentId) => {
      reread.push(agentId);
      return Promise.resolve();
    },
    track: (task) => void task,
  };
  return { sweeper: new LeaseSweeper(options, scheduler), adopted, dropped, woken, reread };
}

/**
 * A lease sweep step that fails leaves no agent claimed or held here and unpolled until its lease
 * lapses: the rest of a claimed batch is still taken over, and agents let go of are polled again when
 * their release could not be written. The sweep still fails, so /health and the log say so.
 */
describe('lease sweeper: a failed step leaves no agent unpolled', function () {
  it('takes over the rest of a claimed batch when one TERMINATED agent cannot be deleted, then fails the sweep', async function () {
    const claimed = [record('gone', OperationalState.TERMINATED), record('first', OperationalState.GET_QUOTE), record('second', OperationalState.GET_QUOTE)];
    const { sweeper, adopted } = sweeperWith({
      claimFree: () => Promise.resolve(claimed),
      delete: () => Promise.reject(new Error('connection terminated')),
    });
    let failure: unknown;
    await sweeper.start().catch((error: unknown) => (failure = error));
    sweeper.stop();
    expect(adopted).to.deep.equal(['first', 'second']);
    expect((failure as Error | undefined)?.message).to.equal('connection terminated');
  });

  it('polls again the agents it let go of when their release could not be written, then fails the sweep', async function () {
    const { sweeper, dropped, reread } = sweeperWith(
      {
        population: () => Promise.resolve({ liveProcesses: 2, claimableAgents: 4 }),
        releaseAgents: () => Promise.reject(new Error('connection terminated')),
      },
      ['a1', 'a2', 'a3', 'a4'],
    );
    let failure: unknown;
    await sweeper.start().catch((error: unknown) => (failure = error));
    sweeper.stop();
    expect(dropped).to.deep.equal(['a1', 'a2']);
    expect(reread).to.deep.equal(['a1', 'a2']);
    expect((failure as Error | undefined)?.message).to.equal('connection terminated');
  });
});

/**
 * Agents another process took from this one (judged dead by its lock during a blip, say) are re-read at
 * the next sweep and not counted in its share: it does not poll them until a round's write is refused.
 */
describe('lease sweeper: agents taken by another process', function () {
  it('wakes the agents it no longer owns and leaves them out of its share', async function () {
    const limits: unknown[] = [];
    const { sweeper, woken } = sweeperWith(
      {
        notOwnedBy: () => Promise.resolve(['a1']),
        population: () => Promise.resolve({ liveProcesses: 1, claimableAgents: 3 }),
        claimFree: (...args: unknown[]) => {
          limits.push(args[3]);
          return Promise.resolve([]);
        },
      },
      ['a1', 'a2', 'a3'],
    );
    await sweeper.start();
    sweeper.stop();
    expect(woken).to.deep.equal(['a1']);
    expect(limits).to.deep.equal([1]);
  });
});
