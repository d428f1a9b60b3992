import { expect } from 'chai';
import { buildAgentConfig } from '../../lib/agent/agent-config.js';

describe('agent config', function () {
  it("has the Rust agent's defaults and is frozen", function () {
    const config = buildAgentConfig({ dataDir: '/var/lib/ironlime/agent' });
    expect(config).to.include({
      registrarUrl: 'http://127.0.0.1:8890',
      host: '127.0.0.1',
      port: 9002,
      tpm: 'swtpm',
      hashAlg: 'sha256',
      emulate: false,
    });
    // Unset: negotiated with the registrar (test/agent/agent-registrar-version.test.ts).
    expect(config.registrarApiVersion).to.equal(undefined);
    expect(Object.isFrozen(config)).to.equal(true);
  });

  it('accepts every TPM form', function () {
    for (const tpm of ['swtpm', 'software', 'swtpm:host=127.0.0.1,port=2321', 'device:/dev/tpmrm0']) {
      expect(buildAgentConfig({ dataDir: '/d', tpm }).tpm).to.equal(tpm);
    }
  });

  const refusals: [Record<string, unknown>, string][] = [
    [{ tpm: 'mssim:host=x' }, 'invalid config: agent.tpm: must be swtpm, software, swtpm:host=H,port=P or device:/dev/…'],
    [{ tpm: 'device:/dev/tpm0;rm -rf' }, 'invalid config: agent.tpm: must be swtpm, software, swtpm:host=H,port=P or device:/dev/…'],
    [{ port: 70000 }, 'invalid config: agent.port: must not be greater than 65535'],
    [{ uuid: 'has space' }, 'invalid config: agent.uuid: must be an agent id of letters, digits, "_", "." and "-" (at most 80)'],
    [{ registrarUrl: 'ftp://x' }, 'invalid config: agent.registrarUrl: must be a URL address'],
    [{ hashAlg: 'md5' }, 'invalid config: agent.hashAlg: must be one of sha1, sha256, sha384, sha512'],
    [{ registrarApiVersion: '3.0' }, 'invalid config: agent.registrarApiVersion: must be a 2.x API version'],
    [{ colour: 'blue' }, 'invalid config: agent.colour: unknown field'],
  ];
  for (const [fields, message] of refusals) {
    it(`refuses ${JSON.stringify(fields)}`, function () {
      expect(() => buildAgentConfig({ dataDir: '/d', ...fields }))
        .to.throw(message)
        .with.property('code', 'ERR_INVALID_CONFIG');
    });
  }
});
