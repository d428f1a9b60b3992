import { IsIn, IsInt, IsOptional, IsString, Max, Min } from 'class-validator';
import { expect } from 'chai';
import { validateDto } from '../../lib/http/dto-validation.js';
import { RequestValidationError } from '../../lib/http/http-errors.js';
import { IsBase64String, IsHexString, IsKeylimeAgentId, IsNonce, IsPcrMask, IsPem, pemLabels } from '../../lib/http/validators.js';
import { tlsFixture } from './tls-fixture.js';
import { cpuTimed } from '../helpers/cpu-time.js';

class QuoteQuery {
  @IsNonce()
  nonce!: string;

  @IsOptional()
  @IsPcrMask()
  mask?: string;

  @IsOptional()
  @IsIn(['0', '1'])
  partial?: string;

  @IsOptional()
  @IsInt()
  @Min(0)
  ima_ml_entry?: number;
}

class RegisterBody {
  @IsBase64String()
  aik_tpm!: string;

  @IsOptional()
  @IsHexString({ maxLength: 96 })
  auth_tag?: string;

  @IsOptional()
  @IsPem({ label: 'CERTIFICATE' })
  mtls_cert?: string;

  @IsOptional()
  @IsString()
  ip?: string;

  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(65535)
  port?: number;
}

class AgentParams {
  @IsKeylimeAgentId()
  agent_id!: string;
}

class UuidParams {
  @IsKeylimeAgentId({ uuid: true })
  agent_id!: string;
}

function failure(run: () => unknown): RequestValidationError {
  try {
    run();
  } catch (error) {
    expect(error).to.be.instanceOf(RequestValidationError);
    expect((error as RequestValidationError).code).to.equal('ERR_INVALID_REQUEST');
    return error as RequestValidationError;
  }
  throw new Error('expected a RequestValidationError');
}

describe('http: boundary validation', () => {
  it('accepts valid Keylime values and converts query strings to declared types', () => {
    const query = validateDto(QuoteQuery, { nonce: 'Ab3'.repeat(20), mask: '0x408400', partial: '1', ima_ml_entry: '17' }, 'query');
    expect(query).to.be.instanceOf(QuoteQuery);
    expect(query.ima_ml_entry).to.equal(17);
    const body = validateDto(RegisterBody, { aik_tpm: 'ARgAAQALAAUAcgAAABAAFAAL', auth_tag: 'ab'.repeat(48), mtls_cert: tlsFixture().agent.certPem, port: 9002 }, 'body');
    expect(body.port).to.equal(9002);
    expect(validateDto(UuidParams, { agent_id: 'D432FBB3-d2f1-4a97-9ef7-75bd81c00000' }, 'params').agent_id).to.have.length(36);
    expect(validateDto(QuoteQuery, { nonce: 'a', mask: 'FFFFFF' }, 'query').mask).to.equal('FFFFFF');
  });

  it('names the location and the rule of each failure', () => {
    const cases: [() => unknown, string][] = [
      [() => validateDto(RegisterBody, { aik_tpm: 'not base64!' }, 'body'), 'body.aik_tpm: must be a base64 string'],
      [() => validateDto(RegisterBody, { aik_tpm: 'QQ' }, 'body'), 'body.aik_tpm: must be a base64 string'],
      [() => validateDto(RegisterBody, { aik_tpm: 'QR==' }, 'body'), 'body.aik_tpm: must be a base64 string'],
      [() => validateDto(RegisterBody, { aik_tpm: '' }, 'body'), 'body.aik_tpm: must be a base64 string'],
      [() => validateDto(RegisterBody, {}, 'body'), 'body.aik_tpm: must be a base64 string'],
      [() => validateDto(RegisterBody, { aik_tpm: 'QQ==', auth_tag: 'abc' }, 'body'), 'body.auth_tag: must be a hex string of whole bytes'],
      [() => validateDto(RegisterBody, { aik_tpm: 'QQ==', auth_tag: 'ab'.repeat(49) }, 'body'), 'body.auth_tag: must be a hex string of whole bytes'],
      [() => validateDto(RegisterBody, { aik_tpm: 'QQ==', mtls_cert: 'disabled' }, 'body'), 'body.mtls_cert: must be a PEM CERTIFICATE block'],
      [() => validateDto(RegisterBody, { aik_tpm: 'QQ==', port: '9002' }, 'body'), 'body.port: must not be greater than 65535; body.port: must not be less than 1; body.port: must be an integer number'],
      [() => validateDto(RegisterBody, { aik_tpm: 'QQ==', extra: 1 }, 'body'), 'body.extra: should not exist'],
      [() => validateDto(QuoteQuery, { nonce: 'a'.repeat(65) }, 'query'), 'query.nonce: must be 1 to 64 letters and digits'],
      [() => validateDto(QuoteQuery, { nonce: 'abc-def' }, 'query'), 'query.nonce: must be 1 to 64 letters and digits'],
      [() => validateDto(QuoteQuery, { nonce: ['a', 'b'] }, 'query'), 'query.nonce: must be 1 to 64 letters and digits'],
      [() => validateDto(QuoteQuery, { nonce: 'a', mask: '0x1000000' }, 'query'), 'query.mask: must be a hex PCR mask (optional 0x) of PCRs 0-23'],
      [() => validateDto(QuoteQuery, { nonce: 'a', mask: '0x' }, 'query'), 'query.mask: must be a hex PCR mask (optional 0x) of PCRs 0-23'],
      [() => validateDto(QuoteQuery, { nonce: 'a', partial: '2' }, 'query'), 'query.partial: must be one of the following values: 0, 1'],
      [() => validateDto(AgentParams, { agent_id: 'a/b' }, 'params'), 'params.agent_id: must be an agent id of letters, digits, "_", "." and "-" (at most 80)'],
      [() => validateDto(AgentParams, { agent_id: 'é' }, 'params'), 'params.agent_id: must be an agent id of letters, digits, "_", "." and "-" (at most 80)'],
      [() => validateDto(AgentParams, { agent_id: 'a'.repeat(81) }, 'params'), 'params.agent_id: must be an agent id of letters, digits, "_", "." and "-" (at most 80)'],
      [() => validateDto(UuidParams, { agent_id: 'agent-1' }, 'params'), 'params.agent_id: must be a UUID'],
      [() => validateDto(RegisterBody, [], 'body'), 'body: must be a JSON object'],
      [() => validateDto(RegisterBody, null, 'body'), 'body: must be a JSON object'],
      [() => validateDto(RegisterBody, 'x', 'body'), 'body: must be a JSON object'],
    ];
    for (const [run, message] of cases) {
      expect(failure(run).message, message).to.equal(message);
    }
    expect(failure(() => validateDto(RegisterBody, { aik_tpm: '!' }, 'body')).location).to.equal('body.aik_tpm');
  });

  it('checks PEM structure: whole blocks, base64 bodies, nothing around them', () => {
    const cert = tlsFixture().agent.certPem;
    expect(pemLabels(cert)).to.deep.equal(['CERTIFICATE']);
    expect(pemLabels(`${cert}\n${tlsFixture().ca.certPem}`)).to.deep.equal(['CERTIFICATE', 'CERTIFICATE']);
    expect(pemLabels(tlsFixture().agent.keyPem)).to.deep.equal(['RSA PRIVATE KEY']);
    expect(pemLabels(`junk${cert}`)).to.equal(undefined);
    expect(pemLabels(cert.replace('-----END CERTIFICATE-----', '-----END PRIVATE KEY-----'))).to.equal(undefined);
    expect(pemLabels(cert.replace(/\n[A-Za-z0-9+/]/, '\n!'))).to.equal(undefined);
  });

  it('stays fast on huge hostile strings', () => {
    // CPU time: a CI host that keeps this process off the CPU for seconds does not count.
    const { ms } = cpuTimed(() => {
      // A multiple of 4 long, so the base64 check cannot stop at the length test.
      const huge = 'A'.repeat(15 * 1024 * 1024 - 4) + 'AAA!';
      expect(failure(() => validateDto(RegisterBody, { aik_tpm: huge }, 'body')).message).to.equal('body.aik_tpm: must be a base64 string');
      expect(failure(() => validateDto(RegisterBody, { aik_tpm: 'QQ==', auth_tag: huge }, 'body')).location).to.equal('body.auth_tag');
      expect(failure(() => validateDto(RegisterBody, { aik_tpm: 'QQ==', mtls_cert: `-----BEGIN CERTIFICATE-----\n${huge}` }, 'body')).location).to.equal('body.mtls_cert');
    });
    expect(ms).to.be.below(3000);
  });
});
