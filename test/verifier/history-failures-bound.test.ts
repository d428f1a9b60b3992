import { expect } from 'chai';
import { seedVerifierAgents } from '../../bench/dashboard-bench.js';
import { initialAgentState } from '../../lib/attestation/agent-state.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { decideQuoteReply, type PullDecision, type PullSettings } from '../../lib/attestation/pull-decision.js';
import { compileSeverityPolicy } from '../../lib/attestation/severity.js';
import { MAX_STORED_FAILURES, MAX_STORED_FAILURE_BYTES, storedFailures } from '../../lib/attestation/stored-failures.js';
import { IMA_EVENTS } from '../../lib/ima/ima-failure.js';
import { historyFromRow } from '../../lib/verifier/verifier-agent-record.js';
import { storeRounds } from '../../lib/verifier/save-rounds.js';
import { verdictDetails } from '../../lib/verifier/verdict-audit.js';
import { FakeAgent } from '../attestation/fake-agent.js';
import { maskOf, policiesFor } from '../attestation/engine-fixtures.js';
import { openMigratedTestSchema, type OpenedDatabase } from '../helpers/databases.js';

const NONCE = 'Ai5M5SjYjnkyv4P7itH1';
const settings: PullSettings = { quoteInterval: 2, retryInterval: 3, maxRetries: 2, exponentialBackoff: true, severity: compileSeverityPolicy(), engine: {} };

/**
 * A first pull round of an agent whose IMA list has `padding` lines outside its policy (paths of the
 * same length, so the first ones weigh the same whatever the list's length) after a file whose path
 * is 20,000 characters long, judged by the engine as the pull loop judges it.
 */
function paddedRound(padding: number): PullDecision {
  const agent = new FakeAgent();
  agent.measure('/usr/bin/bash', 'bash 5.2');
  const policies = policiesFor(agent);
  agent.measure(`/tmp/${'l'.repeat(20_000)}`, 'long');
  for (let i = 0; i < padding; i += 1) agent.measure(`/tmp/padding-${String(i).padStart(6, '0')}`, `padding ${i}`);
  const state = { ...initialAgentState(), operationalState: OperationalState.GET_QUOTE };
  const judged = decideQuoteReply(
    { kind: 'quote', state, partial: false, imaEntry: 0, bootLog: undefined },
    { policies, reply: agent.reply({ nonce: NONCE, mask: maskOf([]), imaEntry: 0 }), nonce: NONCE, imaEntry: 0, now: 1_760_000_000 },
    settings,
  );
  if ('repeat' in judged) throw new Error(`the round was repeated: ${judged.reason}`);
  return judged;
}

/**
 * One failure per IMA line: an agent's reply (up to 64 MiB) made every failed round store every
 * failure in its history row, about 200 bytes a line (21 MiB for a 14 MiB list of 110,000 lines), kept
 * for ever and read back by the history API — and a failed round asks for the whole list again. The row
 * keeps the first `MAX_STORED_FAILURES`, each bounded, and counts the rest with their event ids; the
 * round still fails, with its severity and `last_event_id` from every failure.
 */
describe('history rows: a round stores a bounded number of failures whatever the length of the IMA list [postgres]', function () {
  this.timeout(120_000);
  let opened: OpenedDatabase;

  before(async function () {
    opened = await openMigratedTestSchema();
    await seedVerifierAgents(opened.database.knex, 2, 0);
  });

  after(async function () {
    await opened?.dispose();
  });

  /** Stores `decision` as agent `agentId`'s round and reads back its row: its failures' size in bytes, and the record. */
  async function storedRow(agentId: string, decision: PullDecision): Promise<{ bytes: number; record: ReturnType<typeof historyFromRow> }> {
    const knex = opened.database.knex;
    const stored = await storeRounds(knex, [{ agentId, verifierId: 'default', owner: 'bench', leaseSeconds: 30, state: decision.state, history: decision.history }]);
    expect(stored.get(agentId)?.kind).to.equal('stored');
    const row = (await knex('verifier_attestation_history').where({ agent_id: agentId }).select('*', knex.raw('octet_length(failures::text) as bytes')).first()) as Record<string, unknown>;
    return { bytes: Number(row['bytes']), record: historyFromRow(row) };
  }

  it('200 and 5,000 lines outside the policy store the same bytes; the count and event ids of the rest are kept, and the round fails', async function () {
    const small = paddedRound(200);
    const large = paddedRound(5_000);
    const smallRow = await storedRow('agent-000001', small);
    const largeRow = await storedRow('agent-000002', large);
    expect(largeRow.bytes, 'stored bytes of 5,000 failures vs 200').to.equal(smallRow.bytes);
    expect(largeRow.bytes).to.be.below(MAX_STORED_FAILURES * MAX_STORED_FAILURE_BYTES);
    for (const [decision, lines] of [[small, 200], [large, 5_000]] as const) {
      expect(decision.history?.outcome).to.equal('fail');
      expect(decision.state.operationalState).to.equal(OperationalState.INVALID_QUOTE);
      expect(decision.state.lastEventId).to.equal(IMA_EVENTS.notInAllowlist);
      expect(decision.history?.failures).to.have.length(MAX_STORED_FAILURES);
      expect(decision.history?.failuresOmitted).to.equal(lines + 1 - MAX_STORED_FAILURES);
    }
    expect(largeRow.record).to.deep.include({ outcome: 'fail', failuresOmitted: 5_001 - MAX_STORED_FAILURES, omittedEventIds: [IMA_EVENTS.notInAllowlist] });
    const [long, next] = largeRow.record.failures;
    expect(long).to.deep.include({ event_id: IMA_EVENTS.notInAllowlist, severity_label: largeRow.record.failures[1]?.severity_label, recoverable: true });
    expect(long?.context['bytes']).to.be.above(40_000);
    expect(String(long?.context['truncated'])).to.match(/^\{"message":"File not found in allowlist: \/tmp\/lll/);
    expect(next?.context).to.deep.include({ path: '/tmp/padding-000000' });
  });
});

describe('storedFailures and the verdict audit record of a bounded round', () => {
  it('a measured boot failure after a padded IMA list is named among the event ids left out, in the history row and the signed record', () => {
    const ima = { eventId: IMA_EVENTS.notInAllowlist, severityLabel: 'emergency', severityLevel: 7, context: { message: 'File not found in allowlist: /tmp/x' }, recoverable: true };
    const boot = { eventId: 'measured_boot.invalid_pcr_4', severityLabel: 'emergency', severityLevel: 7, context: { message: 'PCR 4 does not match the boot log' }, recoverable: false };
    const stored = storedFailures([...Array.from({ length: 150 }, () => ima), boot, ima]);
    expect(stored).to.deep.include({ failuresOmitted: 52, omittedEventIds: [IMA_EVENTS.notInAllowlist, 'measured_boot.invalid_pcr_4'] });
    const history = { outcome: 'fail' as const, nonce: NONCE, imaMlEntry: 0, imaEntriesReceived: 152, ...stored };
    const details = verdictDetails({ agentId: 'a', verifierId: 'default', owner: 'v1', leaseSeconds: 30, state: initialAgentState(OperationalState.INVALID_QUOTE), history }, history);
    expect(details).to.deep.include({ failures_omitted: 52, omitted_event_ids: [IMA_EVENTS.notInAllowlist, 'measured_boot.invalid_pcr_4'] });
    expect(details['failures']).to.have.length(MAX_STORED_FAILURES);
  });
});
