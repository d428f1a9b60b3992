import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { hostIdHash, type HostId } from '../../lib/identity/host-id.js';
import { hostProofKey, hostRegistrationProof, newHostSecret } from '../../lib/identity/host-secret-proof.js';
import type { IdentityMode } from '../../lib/identity/trust-level.js';
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

function fullMessage(agentId: string, mode: IdentityMode): string {
  return (
    `agent '${agentId}' refused: the registrar holds ${CAP} ${mode} agents, its limit per identity mode other than tpm ` +
    '(maxAgentsPerNonTpmMode); an admin deletes agents no longer in use or raises the limit'
  );
}

/**
 * Registrations in a mode other than `tpm` (`id-only`, `id-secret`, `emulated-tpm`) cost an anonymous
 * caller nothing and are bounded by neither the per-EK count nor the expiry of never-activated
 * records: the registrar holds at most `maxAgentsPerNonTpmMode` of each mode. A `tpm` registration is
 * never refused by this cap, whatever its EK check said.
 */
describe('registrar: the cap per identity mode other than tpm', function () {
  let env: RegistrarTestEnvironment;
  let hardware: SoftwareTpm;
  let unvouched: SoftwareTpm;

  before(async function () {
    env = await createRegistrarTestEnvironment();
    hardware = await createSoftwareTpm({ issueEkCertificate: (key) => env.ekCa.issue(key) });
    const rogueCa = SoftwareEkCa.create({ commonName: 'not a vendor' });
    unvouched = await createSoftwareTpm({ issueEkCertificate: (key) => rogueCa.issue(key) });
  });

  after(async function () {
    await hardware?.close();
    await unvouched?.close();
    env?.dispose();
  });

  forEachDatabase('per-mode cap', (fixture) => {
    let registrar: RunningRegistrar;
    let agentClient: RegistrarClient;
    let admin: RegistrarClient;

    before(async function () {
      // EK check warn: a `tpm` registration whose EK certificate does not chain is stored, below hardware-tpm
      // (as every `tpm` registration is under `off`).
      registrar = await startTestRegistrar(env, fixture.database, { maxAgentsPerNonTpmMode: CAP, ekCheck: 'warn' });
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

    function registerIdOnly(id: string, hostId: HostId = freshHostId(), port = 9002): Promise<string | undefined> {
      return agentClient.registerHost(id, { mode: 'id-only', hostId, ip: '127.0.0.1', port, mtlsCert: 'disabled' });
    }

    async function registerIdSecret(id: string, hostId: HostId = freshHostId()): Promise<void> {
      const proofKey = hostProofKey(newHostSecret(), hostIdHash(hostId));
      const nonce = await agentClient.registerHost(id, { mode: 'id-secret', hostId, hostProofKey: proofKey.toString('hex'), ip: '127.0.0.1', port: 9002, mtlsCert: 'disabled' });
      await agentClient.proveHost(id, hostRegistrationProof(proofKey, id, nonce as string));
    }

    async function registerTpm(id: string, tpm: SoftwareTpm, mode: 'tpm' | 'emulated-tpm'): Promise<void> {
      const ek = await tpm.ensureEk();
      const ak = await tpm.ensureAk('sha256');
      const blob = await agentClient.registerTpm(id, { ekPublic: ek.ekPublic, ekCertificate: ek.ekCertificate, akPublic: ak.akPublic, mtlsCert: 'disabled' }, mode);
      await agentClient.activate(id, authTagFor(await tpm.activateCredential(blob), id));
    }

    async function fillIdOnly(): Promise<Map<string, HostId>> {
      const hosts = new Map<string, HostId>();
      for (let i = 0; i < CAP; i += 1) {
        const id = randomUUID();
        hosts.set(id, freshHostId());
        await registerIdOnly(id, hosts.get(id) as HostId);
      }
      return hosts;
    }

    it('refuses a new id-only agent at its cap with 403; re-registration and deletion still work', async function () {
      const hosts = await fillIdOnly();
      const extra = randomUUID();
      const full = await refusal(registerIdOnly(extra));
      expect(full.remoteHttpStatus).to.equal(403);
      expect(full.status).to.equal(fullMessage(extra, 'id-only'));
      expect(await admin.list()).to.have.members([...hosts.keys()]);

      // A node that re-registers itself is not a new row: it works at the cap, with its new contact details.
      const [first] = [...hosts.keys()] as [string];
      await registerIdOnly(first, hosts.get(first) as HostId, 9003);
      expect((await admin.show(first)).port).to.equal(9003);

      await admin.delete(first);
      await registerIdOnly(extra);
      expect(await admin.list()).to.include(extra);
    });

    it('counts each mode apart: id-only at its cap starves neither id-secret nor emulated-tpm', async function () {
      await fillIdOnly();
      for (let i = 0; i < CAP; i += 1) await registerIdSecret(randomUUID());
      const secretExtra = randomUUID();
      const secretFull = await refusal(registerIdSecret(secretExtra));
      expect(secretFull.remoteHttpStatus).to.equal(403);
      expect(secretFull.status).to.equal(fullMessage(secretExtra, 'id-secret'));

      for (let i = 0; i < CAP; i += 1) await registerTpm(randomUUID(), unvouched, 'emulated-tpm');
      const emulatedExtra = randomUUID();
      const emulatedFull = await refusal(registerTpm(emulatedExtra, unvouched, 'emulated-tpm'));
      expect(emulatedFull.remoteHttpStatus).to.equal(403);
      expect(emulatedFull.status).to.equal(fullMessage(emulatedExtra, 'emulated-tpm'));
      expect(await admin.list()).to.have.length(3 * CAP);
    });

    it('never refuses a tpm registration, its EK certificate vouched for or not, with every other mode at its cap', async function () {
      await fillIdOnly();
      for (let i = 0; i < CAP; i += 1) await registerTpm(randomUUID(), unvouched, 'emulated-tpm');
      const vouched = randomUUID();
      await registerTpm(vouched, hardware, 'tpm');
      expect((await admin.show(vouched)).trust_level).to.equal('hardware-tpm');
      // Beyond CAP tpm agents whose EK certificate does not chain: bounded per EK and by activation, not by this cap.
      const unchained = [...Array(CAP + 1)].map(() => randomUUID());
      for (const id of unchained) await registerTpm(id, unvouched, 'tpm');
      for (const id of unchained) expect((await admin.show(id)).trust_level).to.equal('emulated-tpm');
    });

    it('refuses an admin-allowed mode change into a mode at its cap, and stores nothing', async function () {
      await fillIdOnly();
      const moving = randomUUID();
      const hostId = freshHostId();
      await registerIdSecret(moving, hostId);
      await admin.allowModeChange(moving, 'id-only');
      const full = await refusal(registerIdOnly(moving, hostId));
      expect(full.remoteHttpStatus).to.equal(403);
      expect(full.status).to.equal(fullMessage(moving, 'id-only'));
      expect(await admin.identity(moving)).to.include({ identity_mode: 'id-secret' });
    });

    it('lets concurrent new registrations of one mode past its cap no further than the cap', async function () {
      const results = await Promise.allSettled([...Array(CAP * 3)].map(() => registerIdOnly(randomUUID())));
      expect(results.filter((result) => result.status === 'fulfilled')).to.have.length(CAP);
      expect(await admin.list()).to.have.length(CAP);
    });
  });
});
