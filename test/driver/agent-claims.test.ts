import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { AttestationFailed, InvalidParameterValue } from '../../interfaces/errors.js';
import type { Node } from '../../interfaces/node.js';
import { buildConfig } from '../../lib/config/load-config.js';
import { createTask } from '../../lib/provisioning/create-task.js';
import { NodeStore } from '../../lib/provisioning/node-store.js';
import { KeylimeAttestation } from '../../drivers/keylime/keylime-attestation.js';
import { forEachDatabase } from '../helpers/databases.js';
import { rejection } from './driver-test-node.js';

const ALLOWLIST = `${'11'.repeat(32)} /usr/bin/bash\n`;
const AGENT = 'd432fbb3-d2f1-4a97-9ef7-75bd81c00002';
const CONFIG = buildConfig({ enabledAttestationInterfaces: ['keylime'], keylime: { statusTimeoutSeconds: 1, statusPollIntervalSeconds: 1 } });

forEachDatabase(
  'keylime driver: an agent named by another node is refused',
  (fixture) => {
    let dir: string;
    let store: NodeStore;
    let driverInfo: Record<string, unknown>;

    before(function () {
      dir = mkdtempSync(path.join(tmpdir(), 'ironlime-claims-'));
      writeFileSync(path.join(dir, 'allowlist.txt'), ALLOWLIST);
      store = new NodeStore(fixture.database);
      // Never contacted: the claim is checked before any service is.
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

    it("refuses to start attesting, or to locate, an agent another node's driver_info names", async function () {
      const first = await store.createNode({ driverInfo: { ...driverInfo, keylime_agent_uuid: AGENT } });
      const second = await store.createNode({ driverInfo: { ...driverInfo, keylime_agent_uuid: AGENT } });
      const third = await store.createNode({ driverInfo });
      expect(await store.nodesNamingAgent(AGENT)).to.deep.equal([first.uuid, second.uuid]);
      const driver = new KeylimeAttestation({ nodes: store });
      const start = await rejection(driver.startAttestation(cleaning(second)));
      expect(start).to.be.instanceOf(AttestationFailed);
      expect((start as AttestationFailed).reasons).to.deep.equal([
        `agent ${AGENT} is already named by the driver_info of node ${first.uuid}, not only node ${second.uuid}: refused`,
      ]);
      const located = await rejection(driver.locateAgent(cleaning(third), { uuid: AGENT }));
      expect(located).to.be.instanceOf(InvalidParameterValue);
      expect((await store.getNode(third.uuid)).driverInfo).to.not.have.property('keylime_agent_uuid');
    });
  },
  { migrate: true },
);
