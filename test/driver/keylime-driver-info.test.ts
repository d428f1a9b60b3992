import { expect } from 'chai';
import { InvalidParameterValue, MissingParameterValue } from '../../interfaces/errors.js';
import type { KeylimeSettings } from '../../interfaces/settings.js';
import { parseKeylimeDriverInfo } from '../../drivers/keylime/keylime-driver-info.js';
import { OPTIONAL_PROPERTIES, REQUIRED_PROPERTIES } from '../../drivers/keylime/keylime-properties.js';
import { cpuTimed } from '../helpers/cpu-time.js';

const CHECKSUM = 'ab'.repeat(32);
const NO_SERVICES: KeylimeSettings = {
  failCleanOnAttestationFailure: true,
  failDeployOnAttestationFailure: true,
  statusTimeoutSeconds: 300,
  statusPollIntervalSeconds: 5,
};
const WITH_SERVICES: KeylimeSettings = {
  ...NO_SERVICES,
  verifierUrl: 'https://verifier.example:8881',
  registrarUrl: 'https://registrar.example:8891',
  tlsCaCert: '/etc/ironlime/ca.crt',
  tlsClientCert: '/etc/ironlime/client.crt',
  tlsClientKey: '/etc/ironlime/client.key',
};
const GOOD = {
  keylime_allowlist: 'https://policies.example/allowlist.txt',
  keylime_allowlist_checksum: CHECKSUM.toUpperCase(),
  keylime_agent_uuid: 'd432fbb3-d2f1-4a97-9ef7-75bd81c00000',
};

function parse(info: Record<string, unknown>, settings = WITH_SERVICES, locatorAvailable = false) {
  return parseKeylimeDriverInfo(info, settings, { locatorAvailable });
}

function invalid(info: Record<string, unknown>, settings = WITH_SERVICES): InvalidParameterValue {
  try {
    parse(info, settings);
  } catch (error) {
    expect(error).to.be.instanceOf(InvalidParameterValue);
    return error as InvalidParameterValue;
  }
  throw new Error('expected InvalidParameterValue');
}

function missing(info: Record<string, unknown>, settings = WITH_SERVICES, locatorAvailable = false): MissingParameterValue {
  try {
    parse(info, settings, locatorAvailable);
  } catch (error) {
    expect(error).to.be.instanceOf(MissingParameterValue);
    return error as MissingParameterValue;
  }
  throw new Error('expected MissingParameterValue');
}

describe('keylime driver: properties', function () {
  it('describes every field, each ending in Required. or Optional.', function () {
    expect(Object.keys(REQUIRED_PROPERTIES)).to.deep.equal(['keylime_allowlist', 'keylime_allowlist_checksum', 'keylime_agent_uuid']);
    for (const [field, text] of Object.entries({ ...REQUIRED_PROPERTIES, ...OPTIONAL_PROPERTIES })) {
      expect(text, field).to.match(/ (Required|Optional)\.$/);
    }
    for (const field of ['keylime_excludelist', 'keylime_runtime_policy', 'keylime_mb_refstate', 'keylime_tpm_policy', 'keylime_agent_address', 'keylime_agent_port', 'keylime_verifier_url', 'keylime_registrar_url', 'keylime_tls_ca', 'keylime_tls_cert', 'keylime_tls_key']) {
      expect(OPTIONAL_PROPERTIES, field).to.have.property(field);
    }
  });
});

describe('keylime driver: driver_info parsing', function () {
  it('normalises a complete driver_info, taking endpoints and TLS files from the config', function () {
    const settings = parse({ ...GOOD, keylime_agent_port: '9002', keylime_agent_address: '10.0.0.5', unrelated_field: 7 });
    expect(settings.policy).to.deep.equal({
      format: 'allowlist',
      source: { kind: 'url', url: 'https://policies.example/allowlist.txt', field: 'keylime_allowlist' },
      checksum: CHECKSUM,
    });
    expect(settings.agent).to.deep.equal({ uuid: GOOD.keylime_agent_uuid, address: '10.0.0.5', port: 9002 });
    expect(settings.verifierUrl).to.equal('https://verifier.example:8881');
    expect(settings.tlsCa).to.deep.equal({ path: '/etc/ironlime/ca.crt', setting: 'keylime.tlsCaCert' });
    expect(settings.excludelist).to.equal(undefined);
    expect(settings.tpmPolicy.mask).to.equal(0);
  });

  it('prefers per-node endpoints and TLS files over the config', function () {
    const settings = parse({ ...GOOD, keylime_verifier_url: 'https://127.0.0.1:1234', keylime_tls_cert: '/n/c.pem', keylime_tls_key: '/n/k.pem' });
    expect(settings.verifierUrl).to.equal('https://127.0.0.1:1234');
    expect(settings.registrarUrl).to.equal('https://registrar.example:8891');
    expect(settings.tlsCert).to.deep.equal({ path: '/n/c.pem', setting: 'driver_info.keylime_tls_cert' });
    expect(settings.tlsKey).to.deep.equal({ path: '/n/k.pem', setting: 'driver_info.keylime_tls_key' });
  });

  it('refuses an http:// service URL when a CA file is set: the CA and client certificate were dropped silently (L-1)', function () {
    expect(invalid({ ...GOOD, keylime_verifier_url: 'http://127.0.0.1:1234' }).message).to.equal(
      'driver_info.keylime_verifier_url: is http:// but keylime.tlsCaCert is set: use https:// (plain http uses neither the CA nor the client certificate)',
    );
    const plainConfig: KeylimeSettings = { ...WITH_SERVICES, tlsCaCert: undefined, registrarUrl: 'HTTP://registrar.example:8890' };
    expect(invalid({ ...GOOD, keylime_tls_ca: '/n/ca.pem' }, plainConfig).field).to.equal('keylime.registrarUrl');
    // Without a CA file plain http stays usable (in-process tests, fake services).
    expect(parse(GOOD, plainConfig).registrarUrl).to.equal('HTTP://registrar.example:8890');
  });

  it('reports every missing field at once', function () {
    const error = missing({}, NO_SERVICES);
    expect(error.code).to.equal('ERR_MISSING_PARAMETER_VALUE');
    expect(error.fields).to.deep.equal([
      'keylime_allowlist',
      'keylime_allowlist_checksum',
      'keylime_agent_uuid',
      'keylime_verifier_url',
      'keylime_registrar_url',
      'keylime_tls_cert',
      'keylime_tls_key',
    ]);
    expect(error.message).to.equal(
      'driver_info is missing required field(s): keylime_allowlist, keylime_allowlist_checksum, keylime_agent_uuid, keylime_verifier_url, keylime_registrar_url, keylime_tls_cert, keylime_tls_key',
    );
  });

  it('counts null and empty strings as missing', function () {
    expect(missing({ ...GOOD, keylime_allowlist_checksum: '', keylime_agent_uuid: null }).fields).to.deep.equal([
      'keylime_allowlist_checksum',
      'keylime_agent_uuid',
    ]);
  });

  it('does not require the agent uuid when a locator can supply it', function () {
    const { keylime_agent_uuid: _, ...withoutUuid } = GOOD;
    expect(parse(withoutUuid, WITH_SERVICES, true).agent.uuid).to.equal(undefined);
    expect(missing(withoutUuid).fields).to.deep.equal(['keylime_agent_uuid']);
  });

  it('accepts a JSON runtime policy instead of an allowlist, with its own checksum', function () {
    const base = { keylime_agent_uuid: 'node-1', keylime_runtime_policy: '/srv/policy.json' };
    expect(missing(base).fields).to.deep.equal(['keylime_runtime_policy_checksum']);
    const settings = parse({ ...base, keylime_runtime_policy_checksum: CHECKSUM });
    expect(settings.policy).to.deep.equal({
      format: 'runtime-policy',
      source: { kind: 'file', path: '/srv/policy.json', field: 'keylime_runtime_policy' },
      checksum: CHECKSUM,
    });
    const both = invalid({ ...GOOD, keylime_runtime_policy: '/srv/policy.json', keylime_runtime_policy_checksum: CHECKSUM });
    expect(both.message).to.equal('driver_info.keylime_runtime_policy: give either keylime_allowlist or keylime_runtime_policy, not both');
  });

  it('refuses an allowlist checksum beside a runtime policy: it pins no document', function () {
    const error = invalid({ keylime_agent_uuid: 'node-1', keylime_runtime_policy: '/srv/policy.json', keylime_runtime_policy_checksum: CHECKSUM, keylime_allowlist_checksum: CHECKSUM });
    expect(error.message).to.equal('driver_info.keylime_allowlist_checksum: is set but keylime_allowlist is not');
  });

  it('wants a client certificate and its key together', function () {
    expect(missing({ ...GOOD, keylime_tls_cert: '/c.pem' }, NO_SERVICES_WITH_URLS).fields).to.deep.equal(['keylime_tls_key']);
    expect(missing({ ...GOOD, keylime_tls_key: '/k.pem' }, NO_SERVICES_WITH_URLS).fields).to.deep.equal(['keylime_tls_cert']);
  });

  const NO_SERVICES_WITH_URLS: KeylimeSettings = { ...NO_SERVICES, verifierUrl: 'http://v:1', registrarUrl: 'http://r:2' };

  const cases: readonly [string, Record<string, unknown>, string][] = [
    ['a short checksum', { keylime_allowlist_checksum: 'abc' }, 'driver_info.keylime_allowlist_checksum: must be a sha256 digest (64 hex digits)'],
    ['a relative allowlist path', { keylime_allowlist: 'allowlist.txt' }, 'driver_info.keylime_allowlist: must be an absolute file path or an http(s) URL, got "allowlist.txt"'],
    ['credentials in the allowlist URL', { keylime_allowlist: 'https://u:p@x.example/a' }, 'driver_info.keylime_allowlist: must not carry credentials in the URL'],
    ['a non-string allowlist', { keylime_allowlist: 42 }, 'driver_info.keylime_allowlist: must be a string'],
    ['a bad agent id', { keylime_agent_uuid: 'a/b' }, 'driver_info.keylime_agent_uuid: must be an agent id of letters, digits, "_", "." and "-" (at most 80)'],
    ['port 0', { keylime_agent_port: 0 }, 'driver_info.keylime_agent_port: must be an integer from 1 to 65535'],
    ['a port string with letters', { keylime_agent_port: '90x2' }, 'driver_info.keylime_agent_port: must be an integer from 1 to 65535'],
    ['an address with a slash', { keylime_agent_address: '10.0.0.1/24' }, 'driver_info.keylime_agent_address: must be an IP address or a host name'],
    ['an address with a port', { keylime_agent_address: '10.0.0.1:9002' }, 'driver_info.keylime_agent_address: must be an IP address or a host name'],
    ['an address of dots only', { keylime_agent_address: '...' }, 'driver_info.keylime_agent_address: must be an IP address or a host name'],
    ['a host name label starting with a hyphen', { keylime_agent_address: '-agent.example' }, 'driver_info.keylime_agent_address: must be an IP address or a host name'],
    ['an IPv4 address out of range', { keylime_agent_address: '10.0.0.300' }, 'driver_info.keylime_agent_address: must be an IP address or a host name'],
    ['a name the URL parser reads as another IPv4 address', { keylime_agent_address: '1.0x7f' }, 'driver_info.keylime_agent_address: must be an IP address or a host name'],
    ['a verifier URL without scheme', { keylime_verifier_url: 'verifier:8881' }, 'driver_info.keylime_verifier_url: must be an http(s) URL'],
    // isURL takes these, the WHATWG parser the clients use does not: they were a bare TypeError out of validate.
    ['a verifier URL with an empty punycode label', { keylime_verifier_url: 'https://xn--a:8881' }, 'driver_info.keylime_verifier_url: must be an http(s) URL'],
    ['a registrar URL with an IPv6 zone id', { keylime_registrar_url: 'https://[fe80::1%25eth0]:8891' }, 'driver_info.keylime_registrar_url: must be an http(s) URL'],
    ['PCR 10 in the tpm policy', { keylime_tpm_policy: '{"10": ["00"]}' }, 'driver_info.keylime_tpm_policy.10: PCR 10 is checked by IMA replay and cannot be in tpm_policy'],
    ['a tpm policy that is not JSON', { keylime_tpm_policy: '{0: 1' }, 'driver_info.keylime_tpm_policy: is not valid JSON'],
    ['an exclude-list checksum without a list', { keylime_excludelist_checksum: CHECKSUM }, 'driver_info.keylime_excludelist_checksum: is set but keylime_excludelist is not'],
    ['a runtime-policy checksum beside an allowlist', { keylime_runtime_policy_checksum: CHECKSUM }, 'driver_info.keylime_runtime_policy_checksum: is set but keylime_runtime_policy is not'],
    ['an exclude-list URL without its checksum', { keylime_excludelist: 'https://p.example/exclude.txt' }, 'driver_info.keylime_excludelist: an http(s) URL needs keylime_excludelist_checksum (its sha256)'],
    ['a refstate URL without its checksum', { keylime_mb_refstate: 'http://p.example/refstate.json' }, 'driver_info.keylime_mb_refstate: an http(s) URL needs keylime_mb_refstate_checksum (its sha256)'],
    ['credentials in the verifier URL', { keylime_verifier_url: 'https://u:p@verifier.example:8881' }, 'driver_info.keylime_verifier_url: must not carry credentials in the URL'],
    ['a query in the verifier URL', { keylime_verifier_url: 'https://verifier.example:8881/?tenant=a' }, 'driver_info.keylime_verifier_url: must not carry a query or fragment (neither is sent)'],
    ['a fragment in the registrar URL', { keylime_registrar_url: 'https://registrar.example:8891/#x' }, 'driver_info.keylime_registrar_url: must not carry a query or fragment (neither is sent)'],
    ['credentials in the registrar URL', { keylime_registrar_url: 'https://token@registrar.example:8891' }, 'driver_info.keylime_registrar_url: must not carry credentials in the URL'],
    ['an unknown keylime_ key', { keylime_allowlst: '/srv/a.txt' }, 'driver_info.keylime_allowlst: is not a field of the keylime driver (did you mean keylime_allowlist? see getProperties)'],
    ['an unknown keylime_ key like no field', { keylime_colour: 'blue' }, 'driver_info.keylime_colour: is not a field of the keylime driver (see getProperties)'],
    ['a relative TLS CA path', { keylime_tls_ca: 'certs/ca.pem' }, 'driver_info.keylime_tls_ca: must be an absolute file path, got "certs/ca.pem"'],
    ['a relative client key path', { keylime_tls_key: 'client.key' }, 'driver_info.keylime_tls_key: must be an absolute file path, got "client.key"'],
  ];
  for (const [what, change, message] of cases) {
    it(`refuses ${what}`, function () {
      const error = invalid({ ...GOOD, ...change });
      expect(error.code).to.equal('ERR_INVALID_PARAMETER_VALUE');
      expect(error.message).to.equal(message);
    });
  }

  it('refuses a field name of eight million characters at once: no edit distance is worked out for it', function () {
    const name = `keylime_${'x'.repeat(8_000_000)}`;
    // Working out the edit distances to the driver's field names takes tens of seconds of CPU for this name
    // (about 1 s per name here). CPU time, not wall time: a busy CI host keeps the process off the CPU for seconds.
    const { value: error, ms } = cpuTimed(() => invalid({ ...GOOD, [name]: 'x' }));
    expect(ms).to.be.below(3000);
    expect(error.message).to.equal(`driver_info.${name}: is not a field of the keylime driver (see getProperties)`);
  });

  it('accepts an agent address the driver can build an https URL from: IPv4, bare IPv6, a host name', function () {
    // Each is later put in `https://<address>:<port>`: one the URL parser refuses must be refused here, naming the field.
    // keylime_agent: a container's name with an underscore, which the registrar takes as an agent's ip.
    for (const address of ['10.0.0.5', 'fd00::5', 'agent-1.rack-2.example', 'agent1', 'keylime_agent']) {
      expect(parse({ ...GOOD, keylime_agent_address: address }).agent.address, address).to.equal(address);
    }
  });

  it('keeps the PCR policy, lowercased and without a mask, and accepts file:// URLs', function () {
    const settings = parse({
      ...GOOD,
      keylime_tpm_policy: '{"7": ["AB", "cd"], "0": "00", "mask": "0x1"}',
      keylime_excludelist: 'file:///srv/exclude.txt',
      keylime_mb_refstate: 'http://policies.example/refstate.json',
      keylime_mb_refstate_checksum: CHECKSUM,
    });
    expect(settings.tpmPolicyJson).to.deep.equal({ 0: ['00'], 7: ['ab', 'cd'] });
    expect(settings.excludelist).to.deep.equal({ source: { kind: 'file', path: '/srv/exclude.txt', field: 'keylime_excludelist' }, checksum: undefined });
    expect(settings.mbRefstate?.checksum).to.equal(CHECKSUM);
  });
});
