import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { InvalidConfig } from '../../interfaces/errors.js';
import { startPushAgent } from '../../lib/agent/push/push-agent-server.js';
import { pushVerifierOrigin } from '../../lib/agent/push/verifier-origin.js';

/**
 * The push agent sends its bearer token and evidence to `verifierUrl`: an https origin, or plain http
 * to a loopback address only (in-process tests). Anything else is refused at start, before the data
 * folder, the TPM or the registrar are touched, instead of registering and then failing every round.
 */
describe('push agent: the verifier URL', function () {
  let dir: string;

  beforeEach(async function () {
    dir = await mkdtemp(path.join(tmpdir(), 'ironlime-push-url-'));
  });
  afterEach(async function () {
    await rm(dir, { recursive: true, force: true });
  });

  const refused: [string, string][] = [
    ['http://10.0.0.5:8881', 'plain http leaves the host: the bearer token and the evidence would cross the network unencrypted; use https'],
    ['http://verifier.example:8881', 'plain http leaves the host: the bearer token and the evidence would cross the network unencrypted; use https'],
    ['verifier:8881', 'must be https://HOST:PORT'],
    ['ftp://verifier:21', 'must be https://HOST:PORT'],
    ['not a url', 'must be https://HOST:PORT'],
    ['https://user:secret@verifier:8881', 'must be https://HOST:PORT, without credentials, path, query or fragment'],
    ['https://verifier:8881/v3.0', 'must be https://HOST:PORT, without credentials, path, query or fragment'],
    ['https://verifier:8881?x=1', 'must be https://HOST:PORT, without credentials, path, query or fragment'],
  ];
  for (const [url, detail] of refused) {
    it(`refuses ${url} at start, touching nothing`, async function () {
      const error = await startPushAgent(
        { dataDir: path.join(dir, 'data'), tpm: 'software', registrarUrl: 'http://127.0.0.1:1', verifierUrl: url },
        { registrationAttempts: 1 },
      ).then(() => undefined, (e: unknown) => e);
      expect(error).to.be.instanceOf(InvalidConfig);
      expect((error as Error).message).to.equal(`invalid config: agent.verifierUrl: ${detail}`);
      expect(await readdir(dir)).to.deep.equal([]);
    });
  }

  // A raw ENOENT came out of the start before; a file without a certificate failed every TLS handshake, round after round.
  const badCa: [string, string, string | undefined][] = [
    ['missing', 'cannot read', undefined],
    ['without a PEM certificate', 'holds no PEM certificate', 'not a certificate\n'],
    ['whose PEM markers hold no certificate', 'holds no PEM certificate', '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n'],
  ];
  for (const [what, detail, content] of badCa) {
    it(`refuses a verifier CA file ${what} at start, naming the setting`, async function () {
      const caFile = path.join(dir, 'verifier-ca.crt');
      if (content !== undefined) await writeFile(caFile, content);
      const error = await startPushAgent(
        { dataDir: path.join(dir, 'data'), tpm: 'software', registrarUrl: 'http://127.0.0.1:1', verifierUrl: 'https://verifier.example:8881', verifierCaFile: caFile },
        { registrationAttempts: 1 },
      ).then(() => undefined, (e: unknown) => e);
      expect(error).to.be.instanceOf(InvalidConfig);
      expect((error as Error).message).to.equal(`invalid config: agent.verifierCaFile: ${caFile} ${detail}`.replace(`${caFile} cannot read`, `cannot read ${caFile}: ENOENT`));
    });
  }

  it('takes an https origin, and plain http to a loopback address', function () {
    for (const [url, origin] of [
      ['https://verifier.example:8881', 'https://verifier.example:8881'],
      ['https://verifier.example:8881/', 'https://verifier.example:8881'],
      ['HTTPS://10.0.0.5:8881', 'https://10.0.0.5:8881'],
      ['http://127.0.0.1:8881', 'http://127.0.0.1:8881'],
      ['http://127.1.2.3:8881', 'http://127.1.2.3:8881'],
      ['http://[::1]:8881', 'http://[::1]:8881'],
      ['http://localhost:8881', 'http://localhost:8881'],
    ]) {
      expect(pushVerifierOrigin(url as string), url).to.equal(origin);
    }
  });
});
