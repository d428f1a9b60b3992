import { randomUUID, X509Certificate } from 'node:crypto';
import { expect } from 'chai';
import type { HostId } from '../../lib/identity/host-id.js';
import { hostIdHash } from '../../lib/identity/host-id.js';
import { hostProofKey, hostRegistrationProof, hostSecretProof, newHostSecret } from '../../lib/identity/host-secret-proof.js';
import { RegistrarClient } from '../../lib/registrar/registrar-client.js';
import { computeAuthTag } from '../../lib/tpm/auth-tag.js';
import type { RunningRegistrar } from '../../lib/registrar/registrar-server.js';
import { SoftwareEkCa } from '../../lib/tpm-access/software/ek-certificate.js';
import { createSoftwareTpm, type SoftwareTpm } from '../../lib/tpm-access/software/tpm-adapter.js';
import type { AkInfo, EkInfo } from '../../lib/tpm-access/tpm-port.js';
import { forEachDatabase } from '../helpers/databases.js';
import { adminClient, createRegistrarTestEnvironment, refusal, startTestRegistrar, type RegistrarTestEnvironment } from './helpers/registrar-fixture.js';
import { intermediateEkCa } from './helpers/intermediate-ek-ca.js';
import { authTagFor } from './helpers/test-tpm-identity.js';
import { freshHostId } from './helpers/fresh-host-id.js';

describe('registrar: identity modes and trust levels (issue 15)', function () {
  let env: RegistrarTestEnvironment;
  let trusted: { tpm: SoftwareTpm; ek: EkInfo; ak: AkInfo };
  let rogue: { tpm: SoftwareTpm; ek: EkInfo; ak: AkInfo };

  before(async function () {
    env = await createRegistrarTestEnvironment();
    const rogueCa = SoftwareEkCa.create({ commonName: 'not a vendor' });
    for (const [issuer, assign] of [
      [env.ekCa, (t: typeof trusted) => (trusted = t)],
      [rogueCa, (t: typeof trusted) => (rogue = t)],
    ] as const) {
      const tpm = await createSoftwareTpm({ issueEkCertificate: (key) => issuer.issue(key) });
      assign({ tpm, ek: await tpm.ensureEk(), ak: await tpm.ensureAk('sha256') });
    }
  });

  after(async function () {
    await trusted?.tpm.close();
    await rogue?.tpm.close();
    env?.dispose();
  });

  forEachDatabase(
    'registrar identity modes',
    (fixture) => {
      let registrar: RunningRegistrar;
      let agentClient: RegistrarClient;
      let admin: RegistrarClient;

      before(async function () {
        registrar = await startTestRegistrar(env, fixture.database);
        agentClient = new RegistrarClient({ baseUrl: registrar.httpUrl });
        admin = adminClient(env, registrar);
      });

      after(async function () {
        agentClient?.close();
        admin?.close();
        await registrar?.close();
      });

      async function registerTpm(id: string, which: typeof trusted, mode: 'tpm' | 'emulated-tpm', hostId?: HostId): Promise<void> {
        const registration = { ekPublic: which.ek.ekPublic, ekCertificate: which.ek.ekCertificate, akPublic: which.ak.akPublic, ip: '127.0.0.1', port: 9002, mtlsCert: 'disabled' };
        const blob = await agentClient.registerTpm(id, registration, mode, hostId);
        await agentClient.activate(id, authTagFor(await which.tpm.activateCredential(blob), id));
      }

      /** Registers (first time: with the proof key) and proves the secret for the nonce. */
      async function registerSecret(id: string, hostId: HostId, secret: Buffer, sendKey = true): Promise<string> {
        const key = hostProofKey(secret, hostIdHash(hostId));
        const nonce = await agentClient.registerHost(id, { mode: 'id-secret', hostId, ...(sendKey ? { hostProofKey: key.toString('hex') } : {}), ip: '127.0.0.1', port: 9002, mtlsCert: 'disabled' });
        expect(nonce).to.match(/^[0-9a-f]{64}$/);
        const proof = hostRegistrationProof(key, id, nonce as string);
        await agentClient.proveHost(id, proof);
        return proof;
      }

      it('a TPM whose EK certificate chains to a trusted CA is hardware-tpm', async function () {
        const id = randomUUID();
        await registerTpm(id, trusted, 'tpm');
        const shown = await admin.show(id);
        expect(shown.trust_level).to.equal('hardware-tpm');
        expect((await admin.identity(id)).identity_mode).to.equal('tpm');
      });

      it('a TPM whose EK certificate chains through an intermediate sent before it in a PEM ekcert is hardware-tpm', async function () {
        const intermediate = intermediateEkCa(env.ekCa, 'registrar test EK intermediate');
        const tpm = await createSoftwareTpm({ issueEkCertificate: (key) => intermediate.issue(key) });
        try {
          const ek = await tpm.ensureEk();
          const ak = await tpm.ensureAk('sha256');
          const leafPem = new X509Certificate(ek.ekCertificate as Uint8Array).toString();
          const id = randomUUID();
          const registration = { ekPublic: ek.ekPublic, ekCertificate: `${intermediate.certificatePem}${leafPem}`, akPublic: ak.akPublic, mtlsCert: 'disabled' };
          const blob = await agentClient.registerTpm(id, registration, 'tpm');
          await agentClient.activate(id, authTagFor(await tpm.activateCredential(blob), id));
          expect((await admin.show(id)).trust_level).to.equal('hardware-tpm');
          // Without the intermediate the same certificate does not chain.
          const alone = await refusal(agentClient.registerTpm(randomUUID(), { ...registration, ekCertificate: leafPem }, 'tpm'));
          expect(alone.remoteHttpStatus).to.equal(403);
        } finally {
          await tpm.close();
        }
      });

      it('an emulated TPM registers without a vendor chain, is attested like a TPM, and is never hardware', async function () {
        const id = randomUUID();
        await registerTpm(id, rogue, 'emulated-tpm');
        const identity = await admin.identity(id);
        expect(identity).to.include({ identity_mode: 'emulated-tpm', trust_level: 'emulated-tpm' });
        // The same trusted TPM declared emulated stays emulated too.
        const other = randomUUID();
        await registerTpm(other, trusted, 'emulated-tpm');
        expect((await admin.show(other)).trust_level).to.equal('emulated-tpm');
      });

      it('id-only registers at once with level id-only and no EK', async function () {
        const id = randomUUID();
        expect(await agentClient.registerHost(id, { mode: 'id-only', hostId: freshHostId(), ip: '127.0.0.1', port: 9002, mtlsCert: 'disabled' })).to.equal(undefined);
        const identity = await admin.identity(id);
        expect(identity).to.include({ identity_mode: 'id-only', trust_level: 'id-only', host_proof_key: null });
        expect((await admin.show(id)).ek_tpm).to.equal(null);
      });

      it('id-secret proves its secret for a nonce; the registrar keeps only the derived key', async function () {
        const id = randomUUID();
        const hostId = freshHostId();
        const secret = newHostSecret();
        await registerSecret(id, hostId, secret);
        const identity = await admin.identity(id);
        expect(identity).to.include({ identity_mode: 'id-secret', trust_level: 'id-secret', host_id_hash: hostIdHash(hostId) });
        const row = JSON.stringify(await fixture.database.knex('registrar_agents').where({ agent_id: id }).first());
        expect(row).to.not.include(secret.toString('hex'));
        // A later registration sends no key and proves again.
        await registerSecret(id, hostId, secret, false);
      });

      it('does not take a liveness proof for the registration nonce: the two are labelled apart', async function () {
        const id = randomUUID();
        const hostId = freshHostId();
        const key = hostProofKey(newHostSecret(), hostIdHash(hostId));
        const nonce = await agentClient.registerHost(id, { mode: 'id-secret', hostId, hostProofKey: key.toString('hex'), mtlsCert: 'disabled' });
        // What the host's liveness route answers anyone who sends it this nonce.
        const reply = await refusal(agentClient.proveHost(id, hostSecretProof(key, id, nonce as string)));
        expect(reply.remoteHttpStatus).to.equal(400);
      });

      it('refuses the TPM activation route for an id-secret or id-only agent, and stores nothing', async function () {
        const id = randomUUID();
        const hostId = freshHostId();
        await registerSecret(id, hostId, newHostSecret());
        // Whoever knows the id and host id re-registers it with contact details of their own; the nonce is theirs.
        const nonce = await agentClient.registerHost(id, { mode: 'id-secret', hostId, ip: '6.6.6.6', port: 6666, mtlsCert: 'disabled' });
        const forged = await refusal(agentClient.activate(id, computeAuthTag(nonce as string, id)));
        expect(forged.remoteHttpStatus).to.equal(400);
        expect(forged.status).to.equal(`agent '${id}' is registered as id-secret, which has no TPM credential to activate; it answers its nonce at PUT /agents/${id}/host-proof`);
        expect(await admin.identity(id)).to.include({ ip: '127.0.0.1', port: 9002, flagged_reason: null });

        const open = randomUUID();
        await agentClient.registerHost(open, { mode: 'id-only', hostId: freshHostId(), ip: '127.0.0.1', port: 9002, mtlsCert: 'disabled' });
        const empty = await refusal(agentClient.activate(open, computeAuthTag('', open)));
        expect(empty.remoteHttpStatus).to.equal(400);
        expect(empty.status).to.equal(`agent '${open}' is registered as id-only, which has no TPM credential to activate; it has nothing to prove`);
        expect(await admin.identity(open)).to.include({ identity_mode: 'id-only', flagged_reason: null });
      });

      it('refuses an id-secret host that lost its secret, presents another one, or replays an old proof', async function () {
        const id = randomUUID();
        const hostId = freshHostId();
        const secret = newHostSecret();
        const oldProof = await registerSecret(id, hostId, secret);

        const lost = await refusal(registerSecret(id, hostId, newHostSecret()));
        expect(lost.remoteHttpStatus).to.equal(403);
        expect(lost.status).to.include('another host secret');
        expect((await admin.identity(id)).flagged_reason).to.include('another host secret');

        const impostor = await refusal(registerSecret(randomUUID(), hostId, newHostSecret()));
        expect(impostor.remoteHttpStatus).to.equal(403);
        expect(impostor.status).to.include('whose secret it does not hold');

        const nonce = await agentClient.registerHost(id, { mode: 'id-secret', hostId });
        expect(nonce).to.match(/^[0-9a-f]{64}$/);
        const replay = await refusal(agentClient.proveHost(id, oldProof));
        expect(replay.remoteHttpStatus).to.equal(400);
        // A wrong proof changes nothing (anyone may send one): the right proof for the nonce still counts.
        await agentClient.proveHost(id, hostRegistrationProof(hostProofKey(secret, hostIdHash(hostId)), id, nonce as string));
      });

      it('a stranger\'s wrong host proof neither deletes a first registration nor cancels an active host\'s move (review r8)', async function () {
        const id = randomUUID();
        const hostId = freshHostId();
        const key = hostProofKey(newHostSecret(), hostIdHash(hostId));
        const first = await agentClient.registerHost(id, { mode: 'id-secret', hostId, hostProofKey: key.toString('hex'), ip: '127.0.0.1', port: 9002, mtlsCert: 'disabled' });
        const wrong = await refusal(agentClient.proveHost(id, 'ab'.repeat(32)));
        expect(wrong.status).to.equal(`host_proof for agent '${id}' does not match; the agent is not activated`);
        await agentClient.proveHost(id, hostRegistrationProof(key, id, first as string));
        const move = await agentClient.registerHost(id, { mode: 'id-secret', hostId, ip: '127.0.0.1', port: 9003, mtlsCert: 'disabled' });
        const again = await refusal(agentClient.proveHost(id, 'ab'.repeat(32)));
        expect(again.status).to.equal(`host_proof for agent '${id}' does not match; its proven contact details are kept`);
        expect(await admin.identity(id)).to.include({ port: 9002, flagged_reason: null });
        await agentClient.proveHost(id, hostRegistrationProof(key, id, move as string));
        expect(await admin.identity(id)).to.include({ port: 9003 });
      });

      it('refuses a TPM host coming back as id-only, under its id or another, and flags it', async function () {
        const id = randomUUID();
        const hostId = freshHostId();
        await registerTpm(id, trusted, 'tpm', hostId);
        const same = await refusal(agentClient.registerHost(id, { mode: 'id-only', hostId }));
        expect(same.remoteHttpStatus).to.equal(403);
        expect(same.status).to.include('registered as tpm (hardware-tpm) and came back as id-only');
        const renamed = await refusal(agentClient.registerHost(randomUUID(), { mode: 'id-only', hostId }));
        expect(renamed.status).to.include(`registered as agent '${id}' at trust level hardware-tpm`);
        expect((await admin.identity(id)).flagged_reason).to.include('id-only');
        expect((await admin.show(id)).trust_level).to.equal('hardware-tpm');
      });

      it('refuses and flags a TPM host with another EK under the same id', async function () {
        const id = randomUUID();
        await registerTpm(id, trusted, 'emulated-tpm');
        const other = await refusal(registerTpm(id, rogue, 'emulated-tpm'));
        expect(other.remoteHttpStatus).to.equal(403);
        expect(other.status).to.include('different TPM identity is forbidden (ek_tpm, aik_tpm');
        expect((await admin.identity(id)).flagged_reason).to.include('different TPM identity');
      });

      it('changes a mode only after an admin allowed it', async function () {
        const id = randomUUID();
        const hostId = freshHostId();
        await registerTpm(id, trusted, 'tpm', hostId);
        await admin.allowModeChange(id, 'id-secret');
        expect((await admin.identity(id)).mode_change_to).to.equal('id-secret');
        await registerSecret(id, hostId, newHostSecret());
        const identity = await admin.identity(id);
        expect(identity).to.include({ identity_mode: 'id-secret', trust_level: 'id-secret', mode_change_to: null, flagged_reason: null });
        expect((await admin.show(id)).ek_tpm).to.equal(null);
        expect((await refusal(admin.allowModeChange(randomUUID(), 'tpm'))).remoteHttpStatus).to.equal(404);
      });

      it('under ek-check warn, a tpm whose EK certificate does not chain is registered, but only as emulated-tpm', async function () {
        const lenient = await startTestRegistrar(env, fixture.database, { ekCheck: 'warn' });
        const client = new RegistrarClient({ baseUrl: lenient.httpUrl });
        try {
          const id = randomUUID();
          const blob = await client.registerTpm(id, { ekPublic: rogue.ek.ekPublic, ekCertificate: rogue.ek.ekCertificate, akPublic: rogue.ak.akPublic, mtlsCert: 'disabled' }, 'tpm');
          await client.activate(id, authTagFor(await rogue.tpm.activateCredential(blob), id));
          expect((await admin.identity(id)).trust_level).to.equal('emulated-tpm');
        } finally {
          client.close();
          await lenient.close();
        }
      });

      it('refuses malformed identity fields and placeholder host ids', async function () {
        const bad = await refusal(agentClient.registerHost(randomUUID(), { mode: 'id-only', hostId: { kind: 'sys-uuid', value: '00000000-0000-0000-0000-000000000000' } }));
        expect(bad.remoteHttpStatus).to.equal(400);
        expect(bad.status).to.include('placeholder');
        const noKey = await refusal(agentClient.registerHost(randomUUID(), { mode: 'id-secret', hostId: freshHostId() }));
        expect(noKey.remoteHttpStatus).to.equal(400);
        expect(noKey.status).to.include('host_proof_key');
      });
    },
  );
});
