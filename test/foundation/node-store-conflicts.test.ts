import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { InvalidParameterValue, NodeAlreadyExists } from '../../interfaces/errors.js';
import { NodeStore } from '../../lib/provisioning/node-store.js';
import { forEachDatabase } from '../helpers/databases.js';

async function thrown(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a refusal');
}

/** Issue 11 item 14: a taken name or uuid is a typed error, not the database's raw one. */
forEachDatabase(
  'node store: conflicts',
  (fixture) => {
    let store: NodeStore;
    before(function () {
      store = new NodeStore(fixture.database);
    });

    it('refuses a name that exists with NodeAlreadyExists (409) and keeps the first node', async function () {
      const name = `rack-${randomUUID()}`;
      const first = await store.createNode({ name });
      const error = await thrown(store.createNode({ name }));
      expect(error).to.be.instanceOf(NodeAlreadyExists);
      expect(error).to.include({ code: 'ERR_CONFLICT', field: 'name', message: `a node with name ${JSON.stringify(name)} already exists` });
      expect(error.message.length).to.be.lessThan(200);
      expect((await store.getNode(first.uuid)).name).to.equal(name);
    });

    it('refuses a uuid that exists with NodeAlreadyExists', async function () {
      const node = await store.createNode({});
      const error = await thrown(store.createNode({ uuid: node.uuid }));
      expect(error).to.be.instanceOf(NodeAlreadyExists);
      expect(error).to.include({ field: 'uuid', message: `a node with uuid "${node.uuid}" already exists` });
    });

    it('refuses renaming a node to a taken name', async function () {
      const name = `rack-${randomUUID()}`;
      await store.createNode({ name });
      const other = await store.createNode({});
      const error = await thrown(store.updateNode(other.uuid, { name }));
      expect(error).to.be.instanceOf(NodeAlreadyExists);
      expect((await store.getNode(other.uuid)).name).to.equal(null);
    });

    it('refuses a name longer than the column with InvalidParameterValue', async function () {
      const error = await thrown(store.createNode({ name: 'n'.repeat(256) }));
      expect(error).to.be.instanceOf(InvalidParameterValue);
      expect(error.message).to.equal('name: must be at most 255 characters');
    });
  },
  { migrate: true },
);
