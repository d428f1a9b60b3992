import { rm } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { HOST_SECRET_REGISTERED_FILE, startHostAgent, type RunningHostAgent } from '../../lib/agent/host-agent.js';
import { buildAgentConfig } from '../../lib/agent/agent-config.js';
import { InvalidParameterValue } from '../../interfaces/errors.js';
import { KeylimeHttpError } from '../../lib/http/client-errors.js';
import { HOST_SECRET_FILE } from '../../lib/identity/host-secret-file.js';
import { RegistrarClient } from '../../lib/registrar/registrar-client.js';
import { createDeployment, type Deployment } from '../verifier/helpers/verifier-fixture.js';

/**
 * An `id-secret` host sends its proof key only while `host-secret-registered` is absent. A secret made
 * anew (the old one lost) is a new key whatever that file says: it must be presented, so that the
 * registrar refuses it as another secret and flags the record, instead of the host answering the
 * nonce with a key the registrar never saw (400, nothing flagged, nothing said about why).
 */
describe('id-secret host agent: restarts with a lost secret', function () {
  this.timeout(60_000);
  let deployment: Deployment;
  let admin: RegistrarClient;
  const hosts: RunningHostAgent[] = [];

  before(async function () {
    deployment = await createDeployment();
    admin = new RegistrarClient({ baseUrl: deployment.registrar.tlsUrl, tls: { ca: deployment.registrar.caCert, cert: deployment.tenantTls.cert, key: deployment.tenantTls.key } });
  });

  after(async function () {
    admin?.close();
    for (const host of hosts) await host.close().catch(() => undefined);
    await deployment?.dispose();
  });

  async function startHost(name: string, hostId: string): Promise<RunningHostAgent> {
    const host = await startHostAgent(
      buildAgentConfig({ dataDir: path.join(deployment.root, name), registrarUrl: deployment.registrar.httpUrl, port: 0, clientCaFile: deployment.caFile, identity: 'id-secret', hostId }),
    );
    hosts.push(host);
    return host;
  }

  it('a host whose secret file is gone (its registered marker kept) presents its new key: refused as another secret and flagged', async function () {
    const first = await startHost('lost-secret', 'mac:02:00:00:00:16:01');
    await first.close();
    await rm(path.join(deployment.root, 'lost-secret', HOST_SECRET_FILE));
    let refused: unknown;
    await startHost('lost-secret', 'mac:02:00:00:00:16:01').catch((error: unknown) => (refused = error));
    expect(refused).to.be.instanceOf(KeylimeHttpError);
    expect((refused as KeylimeHttpError).remoteHttpStatus, (refused as Error).message).to.equal(403);
    expect((await admin.identity(first.uuid)).flagged_reason).to.include('another host secret');

    // Started again: the marker was the lost secret's, so the new key is presented again (refused the same
    // way), and once an admin re-registers the host (deletes the agent) it registers with no file to delete.
    let again: unknown;
    await startHost('lost-secret', 'mac:02:00:00:00:16:01').catch((error: unknown) => (again = error));
    expect((again as KeylimeHttpError).remoteHttpStatus, (again as Error).message).to.equal(403);
    await admin.delete(first.uuid);
    const registered = await startHost('lost-secret', 'mac:02:00:00:00:16:01');
    expect((await admin.identity(registered.uuid)).flagged_reason).to.equal(null);
  });

  it('a host the registrar no longer holds (an admin deleted it) registers again with its key once its marker is gone', async function () {
    const first = await startHost('deleted-record', 'mac:02:00:00:00:16:02');
    const key = (await admin.identity(first.uuid)).host_proof_key;
    await first.close();
    await admin.delete(first.uuid);
    let refused: unknown;
    await startHost('deleted-record', 'mac:02:00:00:00:16:02').catch((error: unknown) => (refused = error));
    // The refusal says what to do: the marker tells the agent the registrar has a key it no longer has.
    expect(refused).to.be.instanceOf(InvalidParameterValue);
    expect((refused as Error).message).to.include(HOST_SECRET_REGISTERED_FILE);
    expect(((refused as Error).cause as KeylimeHttpError).remoteHttpStatus).to.equal(400);
    await rm(path.join(deployment.root, 'deleted-record', HOST_SECRET_REGISTERED_FILE));
    const again = await startHost('deleted-record', 'mac:02:00:00:00:16:02');
    expect((await admin.identity(again.uuid)).host_proof_key).to.equal(key);
  });
});
