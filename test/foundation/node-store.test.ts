import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { InvalidParameterValue, NodeNotFound } from '../../interfaces/errors.js';
import { NodeStore } from '../../lib/provisioning/node-store.js';
import { forEachDatabase } from '../helpers/databases.js';

forEachDatabase(
  'node store',
  (fixture) => {
    let store: NodeStore;
    before(function () {
      store = new NodeStore(fixture.database);
    });

    it('creates, reads, updates and lists a node', async function () {
      const uuid = randomUUID();
      const created = await store.createNode({
        uuid,
        name: `node-${uuid}`,
        driverInfo: { keylime_agent_uuid: 'd432fbb3-d2f1-4a97-9ef7-75bd81c00000', keylime_agent_port: 9002 },
        instanceInfo: { image_source: 'http://images/fedora.qcow2' },
      });
      expect(created).to.include({ uuid, name: `node-${uuid}`, provisionState: 'enroll', attestationInterface: null });
      expect(created.driverInfo).to.deep.equal({
        keylime_agent_uuid: 'd432fbb3-d2f1-4a97-9ef7-75bd81c00000',
        keylime_agent_port: 9002,
      });
      expect(created.lastAttestation).to.deep.equal({ status: null, reason: null, eventIds: [], at: null });
      expect(created.createdAt).to.be.instanceOf(Date);

      const updated = await store.updateNode(uuid, { provisionState: 'cleaning', attestationInterface: 'fake' });
      expect(updated).to.include({ provisionState: 'cleaning', attestationInterface: 'fake' });
      expect(updated.driverInfo).to.deep.equal(created.driverInfo);
      expect(await store.getNode(uuid)).to.deep.equal(updated);

      const cleaning = await store.listNodes({ provisionState: 'cleaning' });
      expect(cleaning.map((node) => node.uuid)).to.deep.equal([uuid]);
      expect((await store.listNodes()).map((node) => node.uuid)).to.include(uuid);

      const back = await store.updateNode(uuid, { attestationInterface: null });
      expect(back.attestationInterface).to.equal(null);
    });

    it('records an attestation outcome with its reason, event ids and time', async function () {
      const node = await store.createNode({});
      const at = new Date('2020-01-02T03:04:05.000Z');
      const failed = await store.recordAttestation(node.uuid, {
        status: 'failed',
        reason: 'file /usr/bin/evil not in allowlist',
        eventIds: ['ima.validation.ima-ng.not_in_allowlist'],
        at,
      });
      expect(failed.lastAttestation).to.deep.equal({
        status: 'failed',
        reason: 'file /usr/bin/evil not in allowlist',
        eventIds: ['ima.validation.ima-ng.not_in_allowlist'],
        at,
      });
      const passed = await store.recordAttestation(node.uuid, { status: 'passed', reason: null, eventIds: [] });
      expect(passed.lastAttestation.status).to.equal('passed');
      expect(passed.lastAttestation.at?.getTime()).to.be.greaterThan(at.getTime());
      expect((await store.getNode(node.uuid)).lastAttestation).to.deep.equal(passed.lastAttestation);
    });

    it('rejects a status outside passed/failed/unavailable at the database', async function () {
      const node = await store.createNode({});
      const attempt = fixture.database.knex('nodes').where({ uuid: node.uuid }).update({ last_attestation_status: 'maybe' });
      await attempt.then(
        () => expect.fail('the check constraint should reject the status'),
        (error: Error) => expect(error.message).to.match(/nodes_last_attestation_status_check/),
      );
    });

    it('throws NodeNotFound for unknown or malformed uuids, InvalidParameterValue for a bad new uuid', async function () {
      const missing = randomUUID();
      for (const attempt of [() => store.getNode(missing), () => store.updateNode(missing, { name: 'x' }), () => store.getNode('nope')]) {
        const error = await attempt().then(
          () => expect.fail('expected NodeNotFound'),
          (caught: unknown) => caught,
        );
        expect(error).to.be.instanceOf(NodeNotFound);
        expect((error as NodeNotFound).code).to.equal('ERR_NODE_NOT_FOUND');
      }
      expect(await store.findNode(missing)).to.equal(undefined);
      const error = await store.createNode({ uuid: 'not-a-uuid' }).catch((caught: unknown) => caught);
      expect(error).to.be.instanceOf(InvalidParameterValue);
      expect((error as InvalidParameterValue).message).to.equal('uuid: must be a UUID');
    });
  },
  { migrate: true },
);
