import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { InvalidConfig } from '../../interfaces/errors.js';
import { ENV_VARIABLES } from '../../lib/config/config-env.js';
import { IronlimeConfig, KeylimeConfig } from '../../lib/config/ironlime-config.js';
import { buildConfig, loadConfig } from '../../lib/config/load-config.js';
import { REPO_ROOT } from '../helpers/paths.js';

function configError(run: () => unknown): InvalidConfig {
  try {
    run();
  } catch (error) {
    expect(error).to.be.instanceOf(InvalidConfig);
    return error as InvalidConfig;
  }
  return expect.fail('expected InvalidConfig');
}

describe('config', function () {
  let dir: string;
  before(function () {
    dir = mkdtempSync(path.join(tmpdir(), 'ironlime-config-'));
  });
  after(function () {
    rmSync(dir, { recursive: true, force: true });
  });

  it('fills defaults and freezes the result deeply', function () {
    const config = buildConfig({});
    expect(config.dataDir).to.equal('./.ironlime');
    expect(config.databaseUrl).to.equal(undefined);
    expect(config.enabledAttestationInterfaces).to.deep.equal(['no-attestation']);
    expect(config.defaultAttestationInterface).to.equal(undefined);
    expect(config.keylime).to.include({
      failCleanOnAttestationFailure: true,
      failDeployOnAttestationFailure: true,
      statusTimeoutSeconds: 300,
      statusPollIntervalSeconds: 5,
    });
    expect(Object.isFrozen(config)).to.equal(true);
    expect(Object.isFrozen(config.keylime)).to.equal(true);
    expect(Object.isFrozen(config.enabledAttestationInterfaces)).to.equal(true);
  });

  it('reads a JSON file and lets IRONLIME_* variables override it', function () {
    const file = path.join(dir, 'ironlime.json');
    writeFileSync(
      file,
      JSON.stringify({
        dataDir: '/var/lib/ironlime',
        enabledAttestationInterfaces: ['no-attestation', 'fake'],
        keylime: { verifierUrl: 'https://verifier.example:8881', failCleanOnAttestationFailure: true },
      }),
    );
    const config = loadConfig({
      file,
      env: {
        IRONLIME_DATABASE_URL: 'postgres://ironlime@db.example/ironlime',
        IRONLIME_DEFAULT_ATTESTATION_INTERFACE: 'fake',
        IRONLIME_KEYLIME_FAIL_CLEAN_ON_ATTESTATION_FAILURE: 'false',
        IRONLIME_KEYLIME_STATUS_TIMEOUT_SECONDS: '60',
        IRONLIME_KEYLIME_TLS_CLIENT_CERT: '/etc/ironlime/client.crt',
        IRONLIME_KEYLIME_TLS_CLIENT_KEY: '/etc/ironlime/client.key',
        IRONLIME_UNRELATED_SERVICE_PORT: '8881',
      },
    });
    expect(config.dataDir).to.equal('/var/lib/ironlime');
    expect(config.databaseUrl).to.equal('postgres://ironlime@db.example/ironlime');
    expect(config.defaultAttestationInterface).to.equal('fake');
    expect(config.keylime).to.include({
      verifierUrl: 'https://verifier.example:8881',
      failCleanOnAttestationFailure: false,
      failDeployOnAttestationFailure: true,
      statusTimeoutSeconds: 60,
      tlsClientCert: '/etc/ironlime/client.crt',
    });
    expect(loadConfig({ env: { IRONLIME_ENABLED_ATTESTATION_INTERFACES: ' fake , no-attestation' } })
      .enabledAttestationInterfaces).to.deep.equal(['fake', 'no-attestation']);
  });

  const invalid: Array<[string, unknown, string, string]> = [
    ['an unknown top-level field', { dataDri: '/x' }, 'dataDri', 'invalid config: dataDri: unknown field'],
    ['an unknown keylime field', { keylime: { verifierURL: 'http://v' } }, 'keylime.verifierURL', 'invalid config: keylime.verifierURL: unknown field'],
    ['a non-URL verifier', { keylime: { verifierUrl: 'not a url' } }, 'keylime.verifierUrl', 'invalid config: keylime.verifierUrl: must be a URL address'],
    ['a zero timeout', { keylime: { statusTimeoutSeconds: 0 } }, 'keylime.statusTimeoutSeconds', 'invalid config: keylime.statusTimeoutSeconds: must not be less than 1'],
    ['a string flag', { keylime: { failDeployOnAttestationFailure: 'no' } }, 'keylime.failDeployOnAttestationFailure', 'invalid config: keylime.failDeployOnAttestationFailure: must be true or false, not the string "no"'],
    ['a mysql URL', { databaseUrl: 'mysql://db/x' }, 'databaseUrl', 'invalid config: databaseUrl: must be a postgres:// or postgresql:// URL'],
    ['no enabled interface', { enabledAttestationInterfaces: [] }, 'enabledAttestationInterfaces', 'invalid config: enabledAttestationInterfaces: must contain at least 1 elements'],
    ['a default that is not enabled', { defaultAttestationInterface: 'keylime' }, 'defaultAttestationInterface', 'invalid config: defaultAttestationInterface: "keylime" is not in enabledAttestationInterfaces (no-attestation)'],
    ['a client cert without its key', { keylime: { tlsClientCert: '/c.crt' } }, 'keylime.tlsClientKey', 'invalid config: keylime.tlsClientKey: tlsClientCert and tlsClientKey must be set together'],
    ['an array root', [], '(root)', 'invalid config: (root): must be a JSON object'],
    ['credentials in the verifier URL', { keylime: { verifierUrl: 'https://admin:secret@v.example:8881' } }, 'keylime.verifierUrl', 'invalid config: keylime.verifierUrl: must not carry credentials in the URL'],
    ['a user name in the registrar URL', { keylime: { registrarUrl: 'https://token@r.example:8891' } }, 'keylime.registrarUrl', 'invalid config: keylime.registrarUrl: must not carry credentials in the URL'],
    ['a query in the verifier URL', { keylime: { verifierUrl: 'https://v.example:8881/?tenant=a' } }, 'keylime.verifierUrl', 'invalid config: keylime.verifierUrl: must not carry a query or fragment (neither is sent)'],
    ['a fragment in the registrar URL', { keylime: { registrarUrl: 'https://r.example:8891/#x' } }, 'keylime.registrarUrl', 'invalid config: keylime.registrarUrl: must not carry a query or fragment (neither is sent)'],
    [
      'an http:// service URL with a CA file (L-1)',
      { keylime: { verifierUrl: 'https://v.example:8881', registrarUrl: 'http://r.example:8891', tlsCaCert: '/ca.crt' } },
      'keylime.registrarUrl',
      'invalid config: keylime.registrarUrl: is http:// but keylime.tlsCaCert is set: use https:// (plain http uses neither the CA nor the client certificate)',
    ],
  ];
  for (const [what, plain, field, message] of invalid) {
    it(`rejects ${what}, naming the field`, function () {
      const error = configError(() => buildConfig(plain));
      expect(error.code).to.equal('ERR_INVALID_CONFIG');
      expect(error.field).to.equal(field);
      expect(error.message).to.equal(message);
    });
  }

  it('names the environment variable or file at fault', function () {
    const flag = configError(() => loadConfig({ env: { IRONLIME_KEYLIME_FAIL_CLEAN_ON_ATTESTATION_FAILURE: 'yes' } }));
    expect(flag.message).to.equal(
      'invalid config: IRONLIME_KEYLIME_FAIL_CLEAN_ON_ATTESTATION_FAILURE: must be "true" or "false", got "yes"',
    );
    const number = configError(() => loadConfig({ env: { IRONLIME_KEYLIME_STATUS_POLL_INTERVAL_SECONDS: '1.5' } }));
    expect(number.field).to.equal('IRONLIME_KEYLIME_STATUS_POLL_INTERVAL_SECONDS');
    const broken = path.join(dir, 'broken.json');
    writeFileSync(broken, '{"dataDir": ');
    expect(configError(() => loadConfig({ file: broken })).message).to.equal(`invalid config: ${broken}: not valid JSON`);
    const absent = path.join(dir, 'absent.json');
    expect(configError(() => loadConfig({ file: absent })).message).to.equal(
      `invalid config: ${absent}: cannot read the config file`,
    );
  });

  it('reads extra EK CA folders of the keylime driver from the file and from IRONLIME_KEYLIME_EXTRA_EK_CA_DIRS', function () {
    const file = path.join(dir, 'ek-ca.json');
    writeFileSync(file, JSON.stringify({ keylime: { extraEkCaDirs: ['/etc/ironlime/ek-ca'] } }));
    expect(loadConfig({ file, env: {} }).keylime.extraEkCaDirs).to.deep.equal(['/etc/ironlime/ek-ca']);
    expect(loadConfig({ file, env: { IRONLIME_KEYLIME_EXTRA_EK_CA_DIRS: '/a,/b' } }).keylime.extraEkCaDirs).to.deep.equal(['/a', '/b']);
    expect(buildConfig({}).keylime.extraEkCaDirs).to.deep.equal([]);
    expect(configError(() => buildConfig({ keylime: { extraEkCaDirs: [''] } })).message).to.contain('keylime.extraEkCaDirs');
  });

  it('docs/config.md documents every field and every environment variable, and no others', function () {
    const text = readFileSync(path.join(REPO_ROOT, 'docs', 'config.md'), 'utf8');
    const rows = [...text.matchAll(/^\| `([A-Za-z_.]+)` \|/gm)].map((match) => match[1] as string);
    const fields = [
      ...Object.keys(new IronlimeConfig()).filter((key) => key !== 'keylime' && key !== 'attestation'),
      ...Object.keys(new KeylimeConfig()).map((key) => `keylime.${key}`),
      ...['clean', 'deploy'].map((step) => `attestation.minimumTrustLevel.${step}`),
    ];
    const variables = ENV_VARIABLES.map((variable) => variable.name);
    expect([...rows].sort()).to.deep.equal([...fields, ...variables].sort());
    for (const variable of ENV_VARIABLES) {
      expect(text).to.contain(`| \`${variable.name}\` | \`${variable.path.join('.')}\``);
    }
  });
});
