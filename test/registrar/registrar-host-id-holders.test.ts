import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import type { HostId } from '../../lib/identity/host-id.js';
import { hostIdHash } from '../../lib/identity/host-id.js';
import { hostProofKey, hostRegistrationProof, newHostSecret } from '../../lib/identity/host-secret-proof.js';
import { RegistrarClient } from '../../lib/registrar/registrar-client.js';
import type { RunningRegistrar } from '../../lib/registrar/registrar-server.js';
import { SoftwareEkCa } from '../../lib/tpm-access/software/ek-certificate.js';
import { createSoftwareTpm, type SoftwareTpm } from '../../lib/tpm-access/software/tpm-adapter.js';
import type { AkInfo, EkInfo } from '../../lib/tpm-access/tpm-port.js';
import { forEachDatabase } from '../helpers/databases.js';
import { freshHostId } from './helpers/fresh-host-id.js';
import { adminClient, createRegistrarTestEnvironment, refusal, startTestRegistrar, type RegistrarTestEnvironment } from './helpers/registrar-fixture.js';
import { authTagFor } from './helpers/test-tpm-identity.js';

interface TestTpm {
  readonly tpm: SoftwareTpm;
  readonly ek: EkInfo;
  readonly ak: AkInfo;
}

/**
 * Who holds a host id (docs/identity.md, "No silent downgrade"): registration is open to anyone who
 * knows a host's MAC or UUID, so only an ACTIVATED record holds its host id, and the first one keeps
 * it; a conflict left after that is resolved by an admin deleting an agent.
 */
describe('registrar: only an activated record holds its host id', function () {
  let env: RegistrarTestEnvironment;
  let hardware: TestTpm;
  let stranger: TestTpm;

  before(async function () {
    env = await createRegistrarTestEnvironment();
    const strangerCa = SoftwareEkCa.create({ commonName: 'a stranger' });
    const open = async (issuer: SoftwareEkCa): Promise<TestTpm> => {
      const tpm = await createSoftwareTpm({ issueEkCertificate: (key) => issuer.issue(key) });
      return { tpm, ek: await tpm.ensureEk(), ak: await tpm.ensureAk('sha256') };
    };
    hardware = await open(env.ekCa);
    stranger = await open(strangerCa);
  });

  after(async function () {
    await hardware?.tpm.close();
    await stranger?.tpm.close();
    env?.dispose();
  });

  forEachDatabase('host id holders', (fixture) => {
    let registrar: RunningRegistrar;
    let client: RegistrarClient;
    let admin: RegistrarClient;

    before(async function () {
      registrar = await startTestRegistrar(env, fixture.database);
      client = new RegistrarClient({ baseUrl: registrar.httpUrl });
      admin = adminClient(env, registrar);
    });

    after(async function () {
      client?.close();
      admin?.close();
      await registrar?.close();
    });

    /** Registers a TPM under `hostId`; activates it unless told not to. */
    async function registerTpm(id: string, which: TestTpm, mode: 'tpm' | 'emulated-tpm', hostId: HostId, activate = true): Promise<void> {
      const blob = await client.registerTpm(id, { ekPublic: which.ek.ekPublic, ekCertificate: which.ek.ekCertificate, akPublic: which.ak.akPublic, mtlsCert: 'disabled' }, mode, hostId);
      if (activate) await client.activate(id, authTagFor(await which.tpm.activateCredential(blob), id));
    }

    /** Registers an id-secret host (with its proof key unless told not to); returns its proof for the nonce, not yet sent. */
    async function registerSecret(id: string, hostId: HostId, secret: Buffer, sendKey = true): Promise<string> {
      const key = hostProofKey(secret, hostIdHash(hostId));
      const nonce = await client.registerHost(id, { mode: 'id-secret', hostId, ...(sendKey ? { hostProofKey: key.toString('hex') } : {}), ip: '127.0.0.1', port: 9002, mtlsCert: 'disabled' });
      return hostRegistrationProof(key, id, nonce as string);
    }

    it('a never-activated registration at a stronger level, or with another secret, blocks nobody', async function () {
      const hostId = freshHostId();
      const victim = randomUUID();
      const secret = newHostSecret();
      await client.proveHost(victim, await registerSecret(victim, hostId, secret));
      // A stranger who knows only the MAC registers an emulated TPM under it and never activates it.
      await registerTpm(randomUUID(), stranger, 'emulated-tpm', hostId, false);
      await client.proveHost(victim, await registerSecret(victim, hostId, secret, false));
      // Nor does an unproven id-secret registration with the stranger's own secret lock out an id-only host.
      const open = freshHostId();
      await registerSecret(randomUUID(), open, newHostSecret());
      const onlyHost = randomUUID();
      await client.registerHost(onlyHost, { mode: 'id-only', hostId: open });
      await client.registerHost(onlyHost, { mode: 'id-only', hostId: open });
      expect(await admin.identity(victim)).to.include({ identity_mode: 'id-secret', flagged_reason: null });
      expect(await admin.identity(onlyHost)).to.include({ identity_mode: 'id-only', flagged_reason: null });
    });

    it('a stranger registering first does not keep the host from registering and proving', async function () {
      const hostId = freshHostId();
      await registerTpm(randomUUID(), stranger, 'emulated-tpm', hostId, false);
      const squatter = randomUUID();
      const squatterProof = await registerSecret(squatter, hostId, newHostSecret());
      const victim = randomUUID();
      await client.proveHost(victim, await registerSecret(victim, hostId, newHostSecret()));
      // The host proved first, so it keeps its host id: the stranger's later proof is refused and stores nothing.
      const late = await refusal(client.proveHost(squatter, squatterProof));
      expect(late.remoteHttpStatus).to.equal(403);
      expect(late.status).to.include(`activation of agent '${squatter}' refused`).and.include(`id-secret agent '${victim}'`);
      expect((await refusal(admin.identity(squatter))).remoteHttpStatus).to.equal(404);
      expect((await admin.identity(victim)).flagged_reason).to.include(squatter);
    });

    it('a stronger record activated later does not displace the first holder', async function () {
      const hostId = freshHostId();
      const victim = randomUUID();
      const secret = newHostSecret();
      await client.proveHost(victim, await registerSecret(victim, hostId, secret));
      const later = randomUUID();
      await registerTpm(later, stranger, 'emulated-tpm', hostId);
      await client.proveHost(victim, await registerSecret(victim, hostId, secret, false));
      expect(await admin.identity(victim)).to.include({ identity_mode: 'id-secret', flagged_reason: null });
      expect((await admin.identity(later)).trust_level).to.equal('emulated-tpm');
    });

    it('an activated TPM still refuses a weaker registration of its host under a new name, and a weaker record registered before cannot activate after it', async function () {
      const hostId = freshHostId();
      const early = randomUUID();
      const earlyProof = await registerSecret(early, hostId, newHostSecret());
      const tpm = randomUUID();
      await registerTpm(tpm, hardware, 'tpm', hostId);
      const renamed = await refusal(client.registerHost(randomUUID(), { mode: 'id-only', hostId }));
      expect(renamed.remoteHttpStatus).to.equal(403);
      expect(renamed.status).to.include(`registered as agent '${tpm}' at trust level hardware-tpm`);
      const late = await refusal(client.proveHost(early, earlyProof));
      expect(late.remoteHttpStatus).to.equal(403);
      expect(late.status).to.include(`activation of agent '${early}' refused`);
      expect((await admin.show(tpm)).trust_level).to.equal('hardware-tpm');
    });

    it('an activated record cannot take a host id by repeating its registration, which needs no proof', async function () {
      const tpm = randomUUID();
      const registration = { ekPublic: hardware.ek.ekPublic, ekCertificate: hardware.ek.ekCertificate, akPublic: hardware.ak.akPublic, mtlsCert: 'disabled' };
      await client.activate(tpm, authTagFor(await hardware.tpm.activateCredential(await client.registerTpm(tpm, registration, 'tpm')), tpm));
      // Its EK and AK are public: a stranger repeats the registration with another host's MAC.
      const hostId = freshHostId();
      const repeated = await refusal(client.registerTpm(tpm, registration, 'tpm', hostId));
      expect(repeated.remoteHttpStatus).to.equal(403);
      expect((await admin.identity(tpm)).host_id_hash).to.equal(null);
      const victim = randomUUID();
      await client.proveHost(victim, await registerSecret(victim, hostId, newHostSecret()));
      expect((await admin.identity(victim)).trust_level).to.equal('id-secret');
    });

    it('what stays open: an emulated TPM activated under a MAC before its host ever registers locks the host out until an admin deletes it', async function () {
      const hostId = freshHostId();
      const squatter = randomUUID();
      await registerTpm(squatter, stranger, 'emulated-tpm', hostId);
      const victim = randomUUID();
      const secret = newHostSecret();
      const locked = await refusal(registerSecret(victim, hostId, secret));
      expect(locked.remoteHttpStatus).to.equal(403);
      expect(locked.status).to.include(`registered as agent '${squatter}' at trust level emulated-tpm`);
      expect((await admin.identity(squatter)).flagged_reason).to.include('id-secret registration');
      await admin.delete(squatter);
      await client.proveHost(victim, await registerSecret(victim, hostId, secret));
      expect((await admin.identity(victim)).trust_level).to.equal('id-secret');
    });
  });
});
