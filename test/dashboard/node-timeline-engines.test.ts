import { expect } from 'chai';
import { seedVerifierAgents } from '../../bench/dashboard-bench.js';
import type { NodeRow } from '../../lib/dashboard/node-row.js';
import { DETAIL_CHARS_SHOWN, readNodeTimeline } from '../../lib/dashboard/node-timeline.js';
import { forEachDatabase } from '../helpers/databases.js';
import { insertFullFailedRounds } from './node-history.js';

const ROUNDS = 6;
const NODE = { agentId: 'agent-000001', tenant: 'default', runtimePolicy: null, mbPolicy: null } as unknown as NodeRow;

/**
 * The node page's timeline reads the contexts of the newest rounds only, by a running sum over them
 * (a window function): the same entries on PostgreSQL and on embedded PGlite, the newest whole and the
 * older ones left out once the bound is spent.
 */
forEachDatabase(
  'dashboard: the node timeline bounded as a whole',
  (fixture) => {
    before(async () => {
      const knex = fixture.database.knex;
      await seedVerifierAgents(knex, 1, 0);
      // Oldest first; each round 20 contexts of 4,000 characters (about 80,000 in all), its number `n` first.
      await insertFullFailedRounds(knex, ROUNDS, 'e', 'a');
    });

    it('shows the newest round whole and leaves out the contexts and event ids of the older ones', async () => {
      const knex = fixture.database.knex;
      // The rounds whose contexts the database sent: the newest, and the next while the sum before it is under the bound.
      let sent: number | undefined;
      const onResponse = (response: unknown): void => {
        const rows = Array.isArray(response) ? response : ((response as { rows?: unknown[] }).rows ?? []);
        const rounds = rows.filter((row): row is { shown_failures: unknown } => typeof row === 'object' && row !== null && 'shown_failures' in row);
        if (rounds.length > 0) sent = rounds.filter((row) => row.shown_failures !== null).length;
      };
      knex.on('query-response', onResponse);
      const timeline = await readNodeTimeline(knex, NODE, undefined).finally(() => knex.removeListener('query-response', onResponse));
      expect(sent, 'rounds whose contexts were read').to.equal(2);
      expect(timeline.map((entry) => entry.kind)).to.deep.equal(Array(ROUNDS).fill('fail'));
      const [newest, ...older] = timeline;
      expect(newest?.leftOut).to.equal(false);
      expect(newest?.detail).to.include(`"n": ${ROUNDS}`);
      expect(newest?.eventIds).to.have.length(20);
      expect(newest?.detail.length).to.be.within(80_000, DETAIL_CHARS_SHOWN);
      for (const entry of older) expect(entry).to.include({ leftOut: true, detail: '' }).and.have.property('eventIds').that.is.empty;
    });
  },
  { migrate: true },
);
