import { expect } from 'chai';
import { seedVerifierAgents } from '../../bench/dashboard-bench.js';
import { initialAgentState } from '../../lib/attestation/agent-state.js';
import type { HistoryRow } from '../../lib/attestation/history-row.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import type { RoundWrite } from '../../lib/verifier/round-writer.js';
import { saveRounds } from '../../lib/verifier/save-rounds.js';
import { openMigratedTestSchema, type OpenedDatabase } from '../helpers/databases.js';

interface PlanNode {
  readonly 'Node Type': string;
  readonly 'Relation Name'?: string;
  readonly Plans?: readonly PlanNode[];
}

/** Every relation a plan node and the nodes under it read. */
function relationsUnder(node: PlanNode): string[] {
  return [...(node['Relation Name'] === undefined ? [] : [node['Relation Name']]), ...(node.Plans ?? []).flatMap(relationsUnder)];
}

function insertNode(node: PlanNode): PlanNode | undefined {
  if (node['Node Type'] === 'ModifyTable' && node['Relation Name'] === 'verifier_attestation_history') return node;
  for (const child of node.Plans ?? []) {
    const found = insertNode(child);
    if (found !== undefined) return found;
  }
  return undefined;
}

const PASS: HistoryRow = { outcome: 'pass', nonce: 'n1', imaMlEntry: 0, imaEntriesReceived: 1, failures: [] };

/**
 * The verdict batch's history rows take their tenant from the agent rows the batch's update already
 * returns: the hot path's statement reads `verifier_agents` once per row, as before history had a
 * tenant, not a second time (an index lookup per verdict).
 */
describe('SAVE_ROUNDS plan [postgres]', function () {
  this.timeout(60_000);
  let opened: OpenedDatabase | undefined;

  after(async function () {
    await opened?.dispose();
  });

  it("inserts the batch's history rows without reading verifier_agents again", async function () {
    opened = await openMigratedTestSchema();
    const { knex } = opened.database;
    await seedVerifierAgents(knex, 300, 1);
    const writes: RoundWrite[] = Array.from({ length: 250 }, (_, i) => ({
      agentId: `agent-${String(i + 1).padStart(6, '0')}`,
      verifierId: 'default',
      owner: 'bench',
      leaseSeconds: 30,
      state: { ...initialAgentState(OperationalState.GET_QUOTE), attestationCount: 5 },
      history: PASS,
    }));
    let plan: PlanNode | undefined;
    await saveRounds(async (statement, bindings) => {
      const explained = (await knex.raw(`explain (format json) ${statement.knexSql}`, bindings)) as { rows: { 'QUERY PLAN': { Plan: PlanNode }[] }[] };
      plan = explained.rows[0]?.['QUERY PLAN'][0]?.Plan;
      return [];
    }, writes);
    const insert = insertNode(plan as PlanNode);
    expect(insert, 'the history insert is in the plan').to.not.equal(undefined);
    expect(relationsUnder(insert as PlanNode).filter((relation) => relation !== 'verifier_attestation_history')).to.deep.equal([]);
  });
});
