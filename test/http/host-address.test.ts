import { expect } from 'chai';
import { isHostAddress } from '../../lib/http/host-address.js';
import { validateDto } from '../../lib/http/dto-validation.js';
import { RequestValidationError } from '../../lib/http/http-errors.js';
import { RegisterAgentBody } from '../../lib/registrar/registrar-dtos.js';
import { AddAgentBody } from '../../lib/verifier/verifier-dtos.js';

/** Addresses Keylime agents register and tenants enrol with (contact_ip): each must go through. */
const ACCEPTED = ['10.0.0.5', '127.0.0.1', 'fd00::5', '::1', '::ffff:10.0.0.5', 'agent-1.rack-2.example', 'Agent1.Example', 'agent1', 'keylime_agent', 'keylime-agent_1.lab', 'agent.example.'];
/** Text no `https://<address>:<port>` can be built from as written, or one the URL parser reads as another host. */
const REFUSED = [
  '10.0.0.1:9002', // a port
  '10.0.0.1/24', // a path
  '...',
  'a..b',
  'agent..example.', // an empty label
  '.',
  '10.0.0.1.', // the URL parser drops the dot: another text than the one stored
  '-x',
  'agent-.example',
  '10.0.0.300', // ends in a number: must then be IPv4
  '1.2.3.4.5',
  '1.0x7f', // the URL parser reads 1.0.0.127
  'agent.0x10',
  'fe80::1%eth0', // a zone id: no URL takes one
  '[fd00::5]', // brackets belong to the URL, not the address
  'a:b',
  'agent one',
  '',
  `${'a'.repeat(63)}.${'b'.repeat(64)}`, // a label over 63
  'a'.repeat(254),
];

describe('host addresses of agents (registrar ip, verifier cloudagent_ip/verifier_ip, driver)', function () {
  it('accepts IPv4, bare IPv6 and host names with hyphens or underscores', function () {
    for (const address of ACCEPTED) expect(isHostAddress(address), address).to.equal(true);
  });

  it('refuses a port, a path, a zone id, brackets, bad labels and names the URL parser reads as another address', function () {
    for (const address of REFUSED) expect(isHostAddress(address), address).to.equal(false);
  });

  it('is a 400 naming the field in a registration and an enrolment, and lets real addresses through', function () {
    const registration = { aik_tpm: 'ARgAAQALAAUAcgAAABAAFAAL', ek_tpm: 'ARgAAQALAAUAcgAAABAAFAAL', port: 9002 };
    const enrolment = {
      v: null,
      cloudagent_ip: '10.0.0.5',
      cloudagent_port: 9002,
      tpm_policy: JSON.stringify({ mask: '0x400' }),
      runtime_policy: '',
      accept_tpm_hash_algs: ['sha256'],
      accept_tpm_encryption_algs: ['rsa'],
      accept_tpm_signing_algs: ['rsassa'],
      ak_tpm: 'ARgAAQALAAUAcgAAABAAFAAL',
      supported_version: '2.6',
    };
    for (const address of ['keylime_agent', 'fd00::5']) {
      expect(validateDto(RegisterAgentBody, { ...registration, ip: address }, 'body').ip).to.equal(address);
      expect(validateDto(AddAgentBody, { ...enrolment, cloudagent_ip: address, verifier_ip: address }, 'body').cloudagent_ip).to.equal(address);
    }
    const refusals: Array<[() => unknown, string]> = [
      [() => validateDto(RegisterAgentBody, { ...registration, ip: '10.0.0.1:9002' }, 'body'), 'body.ip'],
      [() => validateDto(AddAgentBody, { ...enrolment, cloudagent_ip: '1.0x7f' }, 'body'), 'body.cloudagent_ip'],
      [() => validateDto(AddAgentBody, { ...enrolment, verifier_ip: '...' }, 'body'), 'body.verifier_ip'],
    ];
    for (const [check, field] of refusals) {
      expect(check).to.throw(RequestValidationError).with.property('message', `${field}: must be an IP address or a host name`);
    }
  });
});
