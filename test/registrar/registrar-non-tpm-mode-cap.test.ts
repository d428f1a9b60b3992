import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import type { HostId } from '../../lib/identity/host-id.js';
import { RegistrarClient } from '../../lib/registrar/registrar-client.js';
import type { RunningRegistrar } from '../../lib/registrar/registrar-server.js';
import { SoftwareEkCa } from '../../lib/tpm-access/software/ek-certificate.js';
import { createSoftwareTpm, type SoftwareTpm } from '../../lib/tpm-access/software/tpm-adapter.js';
import { forEachDatabase } from '../helpers/databases.js';
import { adminClient, createRegistrarTestEnvironment, refusal, startTestRegistrar, type RegistrarTestEnvironment } from './helpers/registrar-fixture.js';
import { authTagFor } from './helpers/test-tpm-identity.js';

const CAP = 3;

/** A MAC no other test uses (locally administered, unicast). */
function freshHostId(): HostId {
  const bytes = [0x02, ...[...Array(5)].map(() => Math.floor(Math.random() * 256))];
  return { kind: 'mac', value: bytes.map((b) => b.toString(16).padStart(2, '0')).join(':') };
}

/**
 * Registrations without a hardware-rooted identity (`id-only`, `id-secret`, `emulated-tpm`) cost an
 * anonymous caller nothing and are bounded by neither the per-EK count nor the expiry of
 * never-activated records: the registrar holds at most `maxNonHardwareAgents` of them.
 */
describe('registrar: the cap on agents without a hardware TPM', function () {
  let env: RegistrarTestEnvironment;
  let hardware: SoftwareTpm;
  let emulated: SoftwareTpm;

  before(async function () {
    env = await createRegistrarTestEnvironment();
    hardware = await createSoftwareTpm({ issueEkCertificate: (key) => env.ekCa.issue(key) });
    const rogueCa = SoftwareEkCa.create({ commonName: 'not a vendor' });
    emulated = await createSoftwareTpm({ issueEkCertificate: (key) => rogueCa.issue(key) });
  });

  after(async function () {
    await hardware?.close();
    await emulated?.close();
    env?.dispose();
  });

  forEachDatabase('non-hardware cap', (fixture) => {
    let registrar: RunningRegistrar;
    let agentClient: RegistrarClient;
    let admin: RegistrarClient;

    before(async function () {
      registrar = await startTestRegistrar(env, fixture.database, { maxNonHardwareAgents: CAP });
      agentClient = new RegistrarClient({ baseUrl: registrar.httpUrl });
      admin = adminClient(env, registrar);
    });

    beforeEach(async function () {
      await fixture.database.knex('registrar_agents').delete();
    });

    after(async function () {
      agentClient?.close();
      admin?.close();
      await registrar?.close();
    });

    function registerIdOnly(id: string, hostId: HostId, port = 9002): Promise<string | undefined> {
      return agentClient.registerHost(id, { mode: 'id-only', hostId, ip: '127.0.0.1', port, mtlsCert: 'disabled' });
    }

    async function registerTpm(id: string, tpm: SoftwareTpm, mode: 'tpm' | 'emulated-tpm'): Promise<void> {
      const ek = await tpm.ensureEk();
      const ak = await tpm.ensureAk('sha256');
      const blob = await agentClient.registerTpm(id, { ekPublic: ek.ekPublic, ekCertificate: ek.ekCertificate, akPublic: ak.akPublic, mtlsCert: 'disabled' }, mode);
      await agentClient.activate(id, authTagFor(await tpm.activateCredential(blob), id));
    }

    it('refuses a new id-only or emulated-tpm agent at the cap with 429; re-registration, hardware TPMs and deletion still work', async function () {
      const hosts = new Map<string, HostId>();
      for (let i = 0; i < CAP; i += 1) {
        const id = randomUUID();
        hosts.set(id, freshHostId());
        await registerIdOnly(id, hosts.get(id) as HostId);
      }
      const extra = randomUUID();
      const full = await refusal(registerIdOnly(extra, freshHostId()));
      expect(full.remoteHttpStatus).to.equal(429);
      expect(full.status).to.equal(
        `agent '${extra}' refused: the registrar holds ${CAP} agents without a hardware TPM, its limit (maxNonHardwareAgents); ` +
          'an admin deletes agents no longer in use or raises the limit',
      );
      expect((await refusal(registerTpm(randomUUID(), emulated, 'emulated-tpm'))).remoteHttpStatus).to.equal(429);
      expect((await admin.list())).to.have.members([...hosts.keys()]);

      // A node that re-registers itself is not a new row: it works at the cap, with its new contact details.
      const [first] = [...hosts.keys()] as [string];
      await registerIdOnly(first, hosts.get(first) as HostId, 9003);
      expect((await admin.show(first)).port).to.equal(9003);

      // A TPM whose EK certificate chains to a vendor is bounded per EK, not by this cap.
      const vouched = randomUUID();
      await registerTpm(vouched, hardware, 'tpm');
      expect((await admin.show(vouched)).trust_level).to.equal('hardware-tpm');

      await admin.delete(first);
      await registerIdOnly(extra, freshHostId());
      expect((await admin.list())).to.include(extra);
    });

    it('lets concurrent new registrations past the cap no further than the cap', async function () {
      const results = await Promise.allSettled([...Array(CAP * 3)].map(() => registerIdOnly(randomUUID(), freshHostId())));
      expect(results.filter((result) => result.status === 'fulfilled')).to.have.length(CAP);
      expect((await admin.list())).to.have.length(CAP);
    });
  });
});
