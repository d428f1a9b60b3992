import { createHash, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { AttestationFailed, AttestationServiceUnavailable, InvalidParameterValue } from '../../interfaces/errors.js';
import type { Node } from '../../interfaces/node.js';
import { buildConfig } from '../../lib/config/load-config.js';
import { IronlimeMigrationSource, migrateLatest, MIGRATIONS_TABLE } from '../../lib/db/migrate.js';
import { createTask } from '../../lib/provisioning/create-task.js';
import { NodeStore } from '../../lib/provisioning/node-store.js';
import { MIGRATIONS } from '../../migrations/index.js';
import type { DriverInfoWriter } from '../../drivers/keylime/agent-locator.js';
import { KeylimeAttestation } from '../../drivers/keylime/keylime-attestation.js';
import { forEachDatabase } from '../helpers/databases.js';
import { rejection } from './driver-test-node.js';

const ALLOWLIST = `${'11'.repeat(32)} /usr/bin/bash\n`;
const CONFIG = buildConfig({ enabledAttestationInterfaces: ['keylime'], keylime: { statusTimeoutSeconds: 1, statusPollIntervalSeconds: 1 } });
const CLAIM_MIGRATION = '20261204160000-nodes-unique-keylime-agent';

/** A fresh agent id per test: the blocks share their database. */
const newAgentId = (): string => `claims-${randomUUID()}`;

/**
 * The store as the driver sees it, except that `nodesNamingAgent` holds its first `parties` answers
 * until all have been asked: every racer passes the check before any of them writes, the interleaving
 * a check-then-write claim loses on.
 */
function racingWriter(store: NodeStore, parties: number): DriverInfoWriter {
  let waiting = parties;
  let release: () => void = () => undefined;
  const everyoneChecked = new Promise<void>((resolve) => (release = resolve));
  return {
    updateNode: (uuid, changes) => store.updateNode(uuid, changes),
    async nodesNamingAgent(agentId) {
      const answer = await store.nodesNamingAgent(agentId);
      if (waiting > 0) {
        waiting -= 1;
        if (waiting === 0) release();
        await everyoneChecked;
      }
      return answer;
    },
  };
}

forEachDatabase(
  'keylime driver: an agent named by another node is refused',
  (fixture) => {
    let dir: string;
    let store: NodeStore;
    let driverInfo: Record<string, unknown>;

    before(function () {
      dir = mkdtempSync(path.join(tmpdir(), 'ironlime-claims-'));
      writeFileSync(path.join(dir, 'allowlist.txt'), ALLOWLIST);
      // Placeholders: the verifier URLs are plain http, so they are loaded but never used.
      writeFileSync(path.join(dir, 'client.crt'), '-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n');
      writeFileSync(path.join(dir, 'client.key'), '-----BEGIN PRIVATE KEY-----\nMA==\n-----END PRIVATE KEY-----\n', { mode: 0o600 });
      store = new NodeStore(fixture.database);
      // Never answers (port 1): a claim is settled before any service is contacted.
      driverInfo = {
        keylime_allowlist: path.join(dir, 'allowlist.txt'),
        keylime_allowlist_checksum: createHash('sha256').update(ALLOWLIST).digest('hex'),
        keylime_verifier_url: 'http://127.0.0.1:1',
        keylime_registrar_url: 'http://127.0.0.1:1',
        keylime_tls_cert: path.join(dir, 'client.crt'),
        keylime_tls_key: path.join(dir, 'client.key'),
      };
    });

    after(function () {
      rmSync(dir, { recursive: true, force: true });
    });

    const cleaning = (node: Node) => createTask({ ...node, provisionState: 'cleaning', attestationInterface: 'keylime' }, CONFIG);

    it("refuses a second node whose driver_info names an agent another node's names, on create and on update", async function () {
      const agent = newAgentId();
      const first = await store.createNode({ driverInfo: { ...driverInfo, keylime_agent_uuid: agent } });
      const created = await rejection(store.createNode({ driverInfo: { ...driverInfo, keylime_agent_uuid: agent } }));
      expect(created).to.be.instanceOf(InvalidParameterValue);
      expect(created.message).to.equal(`driver_info.keylime_agent_uuid: agent ${agent} is already named by the driver_info of another node`);
      const other = await store.createNode({ driverInfo });
      const updated = await rejection(store.updateNode(other.uuid, { driverInfo: { ...driverInfo, keylime_agent_uuid: agent } }));
      expect(updated).to.be.instanceOf(InvalidParameterValue);
      expect((updated as InvalidParameterValue).field).to.equal('driver_info.keylime_agent_uuid');
      expect((await store.getNode(other.uuid)).driverInfo).to.not.have.property('keylime_agent_uuid');
      expect(await store.nodesNamingAgent(agent)).to.deep.equal([first.uuid]);
      // The node that names the agent may keep rewriting its driver_info.
      await store.updateNode(first.uuid, { driverInfo: { ...driverInfo, keylime_agent_uuid: agent, keylime_agent_port: 9002 } });
    });

    it("refuses to locate an agent another node's driver_info names", async function () {
      const agent = newAgentId();
      const first = await store.createNode({ driverInfo: { ...driverInfo, keylime_agent_uuid: agent } });
      const third = await store.createNode({ driverInfo });
      const located = await rejection(new KeylimeAttestation({ nodes: store }).locateAgent(cleaning(third), { uuid: agent }));
      expect(located).to.be.instanceOf(InvalidParameterValue);
      expect(located.message).to.equal(`agent location uuid: agent ${agent} is already named by the driver_info of node ${first.uuid}, not only node ${third.uuid}: refused`);
      expect((await store.getNode(third.uuid)).driverInfo).to.not.have.property('keylime_agent_uuid');
    });

    it('lets exactly one of two nodes started at once with the same located agent claim it; the other is refused naming the winner', async function () {
      const agent = newAgentId();
      const nodes = [await store.createNode({ driverInfo }), await store.createNode({ driverInfo })];
      const driver = new KeylimeAttestation({ nodes: racingWriter(store, 2), agentLocator: () => Promise.resolve({ uuid: agent }) });
      const outcomes = await Promise.all(nodes.map((node) => rejection(driver.startAttestation(cleaning(node)))));
      const owners = await store.nodesNamingAgent(agent);
      expect(owners).to.have.length(1);
      const winner = nodes.findIndex((node) => node.uuid === owners[0]);
      const loser = 1 - winner;
      // The winner goes on to the verifier (unreachable here); the loser stops at the claim.
      expect(outcomes[winner]).to.be.instanceOf(AttestationServiceUnavailable);
      expect(outcomes[loser]).to.be.instanceOf(InvalidParameterValue);
      expect(outcomes[loser]?.message).to.equal(
        `agent location uuid: agent ${agent} is already named by the driver_info of node ${owners[0]}, not only node ${nodes[loser]?.uuid}: refused`,
      );
      expect((await store.getNode(nodes[loser]?.uuid ?? '')).driverInfo).to.not.have.property('keylime_agent_uuid');
    });

    it('with a node store that does not enforce one node per agent, startAttestation still refuses a shared agent', async function () {
      const agent = newAgentId();
      const [first, second] = [randomUUID(), randomUUID()];
      const sharing: DriverInfoWriter = {
        updateNode: () => Promise.reject(new Error('not written in this test')),
        nodesNamingAgent: () => Promise.resolve([first, second]),
      };
      const node = await store.createNode({ uuid: second, driverInfo: { ...driverInfo, keylime_agent_uuid: agent } });
      const start = await rejection(new KeylimeAttestation({ nodes: sharing }).startAttestation(cleaning(node)));
      expect(start).to.be.instanceOf(AttestationFailed);
      expect((start as AttestationFailed).reasons).to.deep.equal([`agent ${agent} is already named by the driver_info of node ${first}, not only node ${second}: refused`]);
    });
  },
  { migrate: true },
);

forEachDatabase('nodes migration: one node per keylime agent', (fixture) => {
  it('stops, naming the nodes, while two nodes name one agent; applies once the field is cleared on one', async function () {
    const { knex } = fixture.database;
    const before = MIGRATIONS.slice(0, MIGRATIONS.findIndex((migration) => migration.name === CLAIM_MIGRATION));
    await knex.migrate.latest({ migrationSource: new IronlimeMigrationSource(before), tableName: MIGRATIONS_TABLE });
    const agent = newAgentId();
    const [first, second] = [randomUUID(), randomUUID()];
    await knex('nodes').insert({ uuid: first, driver_info: JSON.stringify({ keylime_agent_uuid: agent }), created_at: new Date(1_000) });
    await knex('nodes').insert({ uuid: second, driver_info: JSON.stringify({ keylime_agent_uuid: agent }), created_at: new Date(2_000) });
    await knex('nodes').insert({ uuid: randomUUID(), driver_info: '{}' });
    const refused = await rejection(migrateLatest(knex));
    expect(refused.message).to.contain(
      `nodes share a keylime_agent_uuid in driver_info (agent ${agent}: nodes ${first}, ${second}): clear it on all but one node of each agent, then migrate again`,
    );
    await knex('nodes').where({ uuid: second }).update({ driver_info: '{}' });
    expect(await migrateLatest(knex)).to.include(CLAIM_MIGRATION);
    const store = new NodeStore(fixture.database);
    expect(await store.nodesNamingAgent(agent)).to.deep.equal([first]);
  });
});
