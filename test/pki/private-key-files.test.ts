import { chmod, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { InvalidConfig } from '../../interfaces/errors.js';
import { loadOrCreateAgentServerTls, loadOrCreateNodeKey } from '../../lib/agent/agent-files.js';
import { openAgentTpm } from '../../lib/agent/agent-tpm.js';
import { loadOrCreateTokenKey } from '../../lib/auth/token-signing-key.js';
import { loadOrCreateBrokerKeys } from '../../lib/broker/broker-keys.js';
import { startBroker } from '../../lib/broker/broker-server.js';
import { loadOrCreateFleetMaterial } from '../../lib/fleet/fleet-material.js';
import { loadOrCreateHostSecret } from '../../lib/identity/host-secret-file.js';
import { resolveTenantTls } from '../../lib/tenant/tenant-tls.js';
import { PkiError } from '../../lib/pki/pki-error.js';
import { rejectionOf } from '../helpers/rejection.js';
import { tlsFixture } from '../http/tls-fixture.js';
import { tempDirPerTest } from '../helpers/temp-dir.js';

/** A kind of private key or secret file: where it lives in a data dir, and what loads (or makes) it. */
interface PrivateFileKind {
  readonly kind: string;
  readonly file: string;
  load(dataDir: string): Promise<unknown>;
}

const KINDS: readonly PrivateFileKind[] = [
  { kind: "the agent's NK", file: 'nk-private.pem', load: (dir) => loadOrCreateNodeKey(dir) },
  { kind: "the agent's TLS key", file: path.join('tls', 'agent-private.pem'), load: (dir) => loadOrCreateAgentServerTls(dir, 'agent-1', []) },
  {
    kind: "the agent's software TPM EK CA key",
    file: 'software-ek-ca-key.pem',
    load: async (dir) => (await openAgentTpm('software', dir)).close(),
  },
  { kind: "the broker's resource master key", file: path.join('broker', 'resource-master.key'), load: (dir) => loadOrCreateBrokerKeys(dir, 'https://broker.test') },
  { kind: "the broker's token signing key", file: path.join('broker', 'token-signing-key.pem'), load: (dir) => loadOrCreateBrokerKeys(dir, 'https://broker.test') },
  { kind: "the fleet simulator's EK CA key", file: path.join('shared', 'software-ek-ca-key.pem'), load: (dir) => loadOrCreateFleetMaterial(dir) },
  { kind: "a no-TPM host's secret", file: 'host-secret', load: async (dir) => loadOrCreateHostSecret(dir) },
  { kind: "the verifier's API token key", file: 'api-token-key.pem', load: async (dir) => loadOrCreateTokenKey(dir) },
];

/** The refusal of a private key file at mode 0644. */
function exposedAt0644(file: string): string {
  return `${file} holds a private key but its permissions 0644 let group or others use it; run chmod 600 on it (and replace the key if others may have read it)`;
}

describe('private key and secret files: written 0600, refused when group or others may use them', function () {
  this.timeout(30_000);
  const temp = tempDirPerTest('ironlime-keyfiles-');

  for (const { kind, file, load } of KINDS) {
    it(`${kind}: made with mode 0600, refused at 0644 naming the file, loaded again at 0600`, async function () {
      await load(temp.path);
      const keyPath = path.join(temp.path, file);
      expect((await stat(keyPath)).mode & 0o777).to.equal(0o600);
      await chmod(keyPath, 0o644);
      const error = await rejectionOf(load(temp.path), PkiError);
      expect(error.code).to.equal('ERR_PKI');
      expect(error.message).to.equal(exposedAt0644(keyPath));
      await chmod(keyPath, 0o600);
      await load(temp.path);
    });
  }
});

describe('private key files named in configuration: refused when group or others may use them', function () {
  const temp = tempDirPerTest('ironlime-keyconfig-');
  const PEM = '-----BEGIN PLACEHOLDER-----\n';

  it("the tenant's --key: refused at 0644 naming the file, read at 0600", async function () {
    // Real PEMs: the tenant checks the files' contents once it may read them.
    const { ca, client } = tlsFixture();
    const files = { caFile: path.join(temp.path, 'ca.pem'), certFile: path.join(temp.path, 'cert.pem'), keyFile: path.join(temp.path, 'key.pem') };
    await Promise.all([writeFile(files.caFile, ca.certPem), writeFile(files.certFile, client.certPem), writeFile(files.keyFile, client.keyPem)]);
    await chmod(files.keyFile, 0o644);
    expect((await rejectionOf(resolveTenantTls(files), PkiError)).message).to.equal(exposedAt0644(files.keyFile));
    await chmod(files.keyFile, 0o600);
    expect(await resolveTenantTls(files)).to.deep.equal({ ca: ca.certPem, cert: client.certPem, key: client.keyPem });
  });

  it("the tenant's --key: a missing one is InvalidConfig naming the setting", async function () {
    const files = { caFile: path.join(temp.path, 'ca.pem'), certFile: path.join(temp.path, 'cert.pem'), keyFile: path.join(temp.path, 'key.pem') };
    await Promise.all([files.caFile, files.certFile].map((file) => writeFile(file, PEM)));
    const error = await rejectionOf(resolveTenantTls(files), InvalidConfig);
    expect(error.message).to.equal(`invalid config: tenant.tls: cannot read ${files.keyFile}: no such file`);
  });

  it("the broker's verifierKey: refused at 0644 naming the file, before the broker starts", async function () {
    // A real key: a file holding none exposes nothing, and is refused for what it holds instead.
    const keyFile = path.join(temp.path, 'verifier-client-key.pem');
    await writeFile(keyFile, tlsFixture().client.keyPem);
    await chmod(keyFile, 0o644);
    const starting = startBroker({ dataDir: path.join(temp.path, 'broker'), port: 0, verifierUrl: 'https://127.0.0.1:1', verifierKey: keyFile });
    expect((await rejectionOf(starting, PkiError)).message).to.equal(exposedAt0644(keyFile));
  });
});
