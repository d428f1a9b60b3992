import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { KeylimeHttpError } from '../../lib/http/client-errors.js';
import { hostIdHash } from '../../lib/identity/host-id.js';
import { hostProofKey, hostRegistrationProof, newHostSecret } from '../../lib/identity/host-secret-proof.js';
import { RegistrarClient } from '../../lib/registrar/registrar-client.js';
import type { RunningRegistrar } from '../../lib/registrar/registrar-server.js';
import { CutReplyProxy } from '../helpers/cut-reply-proxy.js';
import { forEachDatabase } from '../helpers/databases.js';
import { useSoftwareTpmEnvironment } from './helpers/software-tpm-environment.js';
import { freshHostId } from './helpers/fresh-host-id.js';
import { adminClient, startTestRegistrar } from './helpers/registrar-fixture.js';
import { authTagFor } from './helpers/test-tpm-identity.js';

/** What a request came to: 'ok', or the HTTP status and text of the refusal. */
function outcomeOf(promise: Promise<unknown>): Promise<string> {
  return promise.then(
    () => 'ok',
    (error: unknown) => (error instanceof KeylimeHttpError ? `${error.remoteHttpStatus} ${error.status}` : String(error)),
  );
}

/** A proxy in front of `url`'s host and port, and the same URL through it. */
async function proxyFor(url: string): Promise<{ proxy: CutReplyProxy; url: string }> {
  const target = new URL(url);
  const proxy = new CutReplyProxy(target.hostname, Number(target.port));
  const port = await proxy.start();
  return { proxy, url: `${target.protocol}//${target.hostname}:${port}` };
}

/**
 * The Keylime client sends an idempotent request once more on a fresh connection when the kept-alive
 * one was closed under it before any answer byte. When the registrar had carried out the first one,
 * the repeat must not turn a success into a failure: an activation proof already accepted is answered
 * 200 again, and a DELETE whose repeat finds nothing is done. Everything else is refused as before.
 */
describe('registrar: a request carried out, its reply lost, and sent once more', function () {
  const setup = useSoftwareTpmEnvironment();

  forEachDatabase(
    'registrar: a request carried out, its reply lost, and sent once more',
    (fixture) => {
      let registrar: RunningRegistrar;
      let plain: CutReplyProxy;
      let tls: CutReplyProxy;
      /** The agent's client, through the proxy in front of the plain port. */
      let agent: RegistrarClient;
      /** An admin client through the proxy in front of the TLS port. */
      let admin: RegistrarClient;
      /** An admin client straight to the registrar. */
      let direct: RegistrarClient;

      before(async function () {
        registrar = await startTestRegistrar(setup.env, fixture.database, { maxAgentsPerEk: 20 });
        const plainSide = await proxyFor(registrar.httpUrl);
        plain = plainSide.proxy;
        agent = new RegistrarClient({ baseUrl: plainSide.url });
        const tlsSide = await proxyFor(registrar.tlsUrl);
        tls = tlsSide.proxy;
        admin = new RegistrarClient({ baseUrl: tlsSide.url, tls: { ca: registrar.caCert, cert: setup.env.tenantTls.cert, key: setup.env.tenantTls.key } });
        direct = adminClient(setup.env, registrar);
      });

      after(async function () {
        agent?.close();
        admin?.close();
        direct?.close();
        await plain?.close();
        await tls?.close();
        await registrar?.close();
      });

      it("answers an id-secret host's repeated host proof 200 once it activated, and still refuses another proof", async function () {
        const id = randomUUID();
        const hostId = freshHostId();
        const key = hostProofKey(newHostSecret(), hostIdHash(hostId));
        const nonce = await agent.registerHost(id, { mode: 'id-secret', hostId, hostProofKey: key.toString('hex'), ip: '127.0.0.1', port: 9002, mtlsCert: 'disabled' });
        const proof = hostRegistrationProof(key, id, nonce as string);
        // The registration's connection is kept alive: the proof goes out on it and its reply is cut.
        plain.cutNextReply();
        const cutsBefore = plain.cuts;
        expect(await outcomeOf(agent.proveHost(id, proof))).to.equal('ok');
        expect(plain.cuts).to.equal(cutsBefore + 1);
        expect(await direct.identity(id)).to.include({ agent_id: id, identity_mode: 'id-secret' });
        // Fail closed: any other proof, well-formed or not, is still refused and changes nothing.
        expect(await outcomeOf(agent.proveHost(id, 'ab'.repeat(32)))).to.equal(`400 host_proof for agent '${id}' does not match; its proven contact details are kept`);
        expect(await outcomeOf(agent.proveHost(id, proof.toUpperCase()))).to.match(/^400 /);
        // After a re-registration the accepted proof proves nothing: the new nonce needs its own.
        const next = await agent.registerHost(id, { mode: 'id-secret', hostId, ip: '127.0.0.1', port: 9003, mtlsCert: 'disabled' });
        expect(await outcomeOf(agent.proveHost(id, proof))).to.match(/^400 /);
        expect(await direct.identity(id)).to.include({ port: 9002 });
        await agent.proveHost(id, hostRegistrationProof(key, id, next as string));
        expect(await direct.identity(id)).to.include({ port: 9003 });
      });

      it("answers a TPM agent's repeated auth_tag 200 once it activated", async function () {
        const id = randomUUID();
        const blob = await agent.register(id, { ekPublic: setup.ek.ekPublic, ekCertificate: setup.ek.ekCertificate, akPublic: setup.ak.akPublic, ip: '127.0.0.1', port: 9002, mtlsCert: 'disabled' });
        const tag = authTagFor(await setup.tpm.activateCredential(blob), id);
        plain.cutNextReply();
        const cutsBefore = plain.cuts;
        expect(await outcomeOf(agent.activate(id, tag))).to.equal('ok');
        expect(plain.cuts).to.equal(cutsBefore + 1);
        expect(await direct.show(id)).to.include({ agent_id: id });
        await direct.delete(id);
      });

      it('takes a DELETE whose repeat found nothing as done, and a DELETE sent once that finds nothing as 404', async function () {
        const id = randomUUID();
        await agent.registerHost(id, { mode: 'id-only', hostId: freshHostId(), ip: '127.0.0.1', port: 9002, mtlsCert: 'disabled' });
        // A kept-alive admin connection, then the DELETE on it, carried out and its reply cut.
        expect(await admin.list()).to.include(id);
        tls.cutNextReply();
        const cutsBefore = tls.cuts;
        await admin.delete(id);
        expect(tls.cuts).to.equal(cutsBefore + 1);
        expect(await direct.list()).to.not.include(id);
        const again = await outcomeOf(admin.delete(id));
        expect(again).to.equal(`404 Agent with ID '${id}' not found`);
      });
    },
    { migrate: true },
  );
});
