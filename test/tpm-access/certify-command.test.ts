import { expect } from 'chai';
import { TpmParseError } from '../../lib/bytes/parse-errors.js';
import { isResendWarning, marshalCertifyCommand, parseCertifyResponse } from '../../lib/tpm-access/tpm2-tools/certify-command.js';
import { TpmAccessError } from '../../lib/tpm-access/tpm-access-error.js';

describe('raw TPM2_Certify for tpm2_send (Part 3 §18.2)', function () {
  it('marshals the command: sessions tag, size, TPM_CC_Certify, both handles, two empty password sessions, the qualifying data, TPM_ALG_NULL', function () {
    const command = Buffer.from(marshalCertifyCommand(0x81010002, 0x81010002, new Uint8Array([0xaa, 0xbb])));
    expect(command.toString('hex')).to.equal(
      '8002' + '0000002e' + '00000148' + '81010002' + '81010002' + '00000012' + '40000009' + '0000' + '00' + '0000' + '40000009' + '0000' + '00' + '0000' + '0002aabb' + '0010',
    );
    expect(command.readUInt32BE(2)).to.equal(command.length);
  });

  it('reads the attest and signature from a response, and refuses an error code, a bad length or truncated bytes with typed errors', function () {
    const attest = Buffer.from('ff544347801700', 'hex');
    const signature = Buffer.from('0014000b0002abcd', 'hex');
    const parameters = Buffer.concat([Buffer.from([0, attest.length]), attest, signature]);
    const sessions = Buffer.from('0000010000', 'hex');
    const body = Buffer.concat([Buffer.alloc(4), parameters, sessions]);
    body.writeUInt32BE(parameters.length, 0);
    const header = Buffer.alloc(10);
    header.writeUInt16BE(0x8002, 0);
    header.writeUInt32BE(10 + body.length, 2);
    const response = Buffer.concat([header, body]);
    const parsed = parseCertifyResponse(new Uint8Array(response));
    expect(Buffer.from(parsed.attest).toString('hex')).to.equal(attest.toString('hex'));
    expect(Buffer.from(parsed.signature).toString('hex')).to.equal(signature.toString('hex'));
    const failed = Buffer.from('80010000000a0000098e', 'hex');
    expect(() => parseCertifyResponse(new Uint8Array(failed))).to.throw(TpmAccessError, '0x98e');
    expect(() => parseCertifyResponse(new Uint8Array(response.subarray(0, 12)))).to.throw(TpmParseError);
    const wrongLength = Buffer.from(response);
    wrongLength.writeUInt32BE(999, 2);
    expect(() => parseCertifyResponse(new Uint8Array(wrongLength))).to.throw(TpmParseError);
    expect(() => parseCertifyResponse(new Uint8Array(0))).to.throw(TpmParseError);
  });

  it('reports a TPM error code as the error\'s responseCode, so the adapter recovers from TPM_RC_INITIALIZE', function () {
    const uninitialized = new Uint8Array(Buffer.from('80010000000a00000100', 'hex'));
    let error: unknown;
    try {
      parseCertifyResponse(uninitialized);
    } catch (caught) {
      error = caught;
    }
    expect(error).to.be.instanceOf(TpmAccessError);
    expect((error as TpmAccessError).responseCode).to.equal(0x100);
  });

  it('sends again only on the warnings that say the command did not run: YIELDED, TESTING, RETRY', function () {
    expect([0x908, 0x90a, 0x922].map(isResendWarning)).to.deep.equal([true, true, true]);
    expect([0x100, 0x903, 0x98e, 0x921, undefined].map(isResendWarning)).to.deep.equal([false, false, false, false, false]);
  });
});
