import { expect } from 'chai';
import { pino } from 'pino';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import type { RoundWrite } from '../../lib/verifier/round-writer.js';
import type { StoredRound } from '../../lib/verifier/save-rounds.js';
import { VerdictStore, type VerdictStoreOptions } from '../../lib/verifier/verdict-store.js';
import { VerifierHealth } from '../../lib/verifier/verifier-health.js';
import { bareVerdict } from './helpers/bare-verdict.js';

/** A writer whose writes answer only when the test says so, in the order they came. */
function heldWriter() {
  const writes: { write: RoundWrite; answer: (result: StoredRound | undefined) => void; fail: (error: Error) => void }[] = [];
  const writer = {
    writeReturningOutcome: (write: RoundWrite) =>
      new Promise<StoredRound | undefined>((answer, fail) => writes.push({ write, answer, fail })),
    flush: () => undefined,
  };
  return { writes, writer };
}

function storeWith(writer: ReturnType<typeof heldWriter>['writer'], health = new VerifierHealth()): VerdictStore {
  const options = {
    repository: { holdsRound: () => Promise.resolve(false) },
    writer,
    health,
    verifierId: 'default',
    owner: 'me',
    leaseSeconds: 30,
    log: pino({ level: 'silent' }),
  } as unknown as VerdictStoreOptions;
  return new VerdictStore(options);
}

const settledYet = async (promise: Promise<unknown>): Promise<boolean> => {
  let settled = false;
  void promise.then(() => (settled = true), () => (settled = true));
  // Enough turns of the microtask queue for any chain of awaits here to run out.
  await new Promise((resolve) => setImmediate(resolve));
  return settled;
};

/**
 * A verdict store's waiters (docs/fleet.md, twenty-second pass: the list is made only when a second store
 * of the agent arrives). Every store that comes while one of the agent is written waits for it, writes
 * nothing and resolves false after it; none is lost when several wait on one list, nor when the first
 * write fails and is retried; a store after the first settled writes again. Held without a database.
 */
describe('verdict store: stores of one agent waiting on the one being written', function () {
  it('two later stores both wait for the first, write nothing, and resolve false after it; a store after it writes', async function () {
    const { writes, writer } = heldWriter();
    const store = storeWith(writer);
    const first = store.store('agent-1', bareVerdict(OperationalState.GET_QUOTE, 1), { rowVersion: 'v1' });
    const second = store.store('agent-1', bareVerdict(OperationalState.GET_QUOTE, 2), { rowVersion: 'v1' });
    const third = store.store('agent-1', bareVerdict(OperationalState.FAILED, 3), { rowVersion: 'v1' });
    expect(writes.map(({ write }) => write.state.attestationCount)).to.deep.equal([1]);
    expect(await settledYet(second)).to.equal(false);
    expect(await settledYet(third)).to.equal(false);
    expect(store.isWaiting('agent-1')).to.equal(true);

    writes[0]?.answer({ kind: 'stored', version: 'v2' });
    expect(await first).to.equal(true);
    expect(await second).to.equal(false);
    expect(await third).to.equal(false);
    expect(store.isWaiting('agent-1')).to.equal(false);
    expect(writes).to.have.length(1);

    const fourth = store.store('agent-1', bareVerdict(OperationalState.GET_QUOTE, 4), { rowVersion: 'v2' });
    expect(writes.map(({ write }) => write.state.attestationCount)).to.deep.equal([1, 4]);
    writes[1]?.answer({ kind: 'stored', version: 'v3' });
    expect(await fourth).to.equal(true);
  });

  it('a store waiting on a write that fails and is retried is woken once the retry stores it', async function () {
    const { writes, writer } = heldWriter();
    const health = new VerifierHealth();
    const store = storeWith(writer, health);
    const first = store.store('agent-1', bareVerdict(OperationalState.GET_QUOTE, 1), { rowVersion: 'v1' });
    const second = store.store('agent-1', bareVerdict(OperationalState.GET_QUOTE, 2), { rowVersion: 'v1' });
    writes[0]?.fail(new Error('connection lost'));
    // The back-off (200 ms) ends early: close() wakes it, and the retry is the last write.
    await new Promise((resolve) => setImmediate(resolve));
    store.close();
    while (writes.length < 2) await new Promise((resolve) => setImmediate(resolve));
    expect(await settledYet(second)).to.equal(false);
    writes[1]?.answer({ kind: 'stored', version: 'v2' });
    expect(await first).to.equal(true);
    expect(await second).to.equal(false);
    expect(store.isWaiting('agent-1')).to.equal(false);
  });

  it('stores of two agents do not wait on each other', async function () {
    const { writes, writer } = heldWriter();
    const store = storeWith(writer);
    const one = store.store('agent-1', bareVerdict(OperationalState.GET_QUOTE, 1), { rowVersion: 'v1' });
    const two = store.store('agent-2', bareVerdict(OperationalState.GET_QUOTE, 1), { rowVersion: 'v1' });
    expect(writes.map(({ write }) => write.agentId)).to.deep.equal(['agent-1', 'agent-2']);
    writes[1]?.answer({ kind: 'stored', version: 'v2' });
    expect(await two).to.equal(true);
    expect(await settledYet(one)).to.equal(false);
    writes[0]?.answer({ kind: 'stored', version: 'v2' });
    expect(await one).to.equal(true);
  });
});
