import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { validateDto } from '../../lib/http/dto-validation.js';
import { RequestValidationError } from '../../lib/http/http-errors.js';
import { defaultCertStoreDir } from '../../lib/pki/cert-store-files.js';
import { LivenessEnrolBody } from '../../lib/verifier/liveness/liveness-routes.js';

/** Any readable certificate: the route pins it for every check, so it must parse. */
const CERT = readFileSync(path.join(defaultCertStoreDir(), 'IFX1.pem'), 'utf8');
const BODY = { identity_mode: 'id-only', ip: '127.0.0.1', port: 9002, mtls_cert: CERT };
/** The bound on `metadata` (liveness-routes.ts). */
const MAX_LIVENESS_METADATA = 16 * 1024;
const REFUSAL = `body.metadata: must be the JSON text of an object, at most ${MAX_LIVENESS_METADATA} characters`;

describe('liveness enrolment body: metadata', function () {
  it('is optional, and kept as given when it is the JSON text of an object', function () {
    expect(validateDto(LivenessEnrolBody, BODY, 'body').metadata).to.equal(undefined);
    const metadata = JSON.stringify({ node: '6b1f2e0d-1e8f-4b68-9f5a-7d8b5f2a3c21' });
    expect(validateDto(LivenessEnrolBody, { ...BODY, metadata }, 'body').metadata).to.equal(metadata);
  });

  it('refuses text that is not a JSON object, a non-string, and text over the bound', function () {
    const padded = JSON.stringify({ pad: 'x'.repeat(MAX_LIVENESS_METADATA) });
    for (const metadata of ['[]', 'null', '"node"', '{"node":', 'x', { node: 'a' }, padded]) {
      expect(() => validateDto(LivenessEnrolBody, { ...BODY, metadata }, 'body'), JSON.stringify(metadata).slice(0, 40))
        .to.throw(RequestValidationError)
        .with.property('message', REFUSAL);
    }
  });

  it('takes metadata and proof_key sent as null as absent (the route refuses an id-secret node without a proof key; null was stored and the node failed every check)', function () {
    const checked = validateDto(LivenessEnrolBody, { ...BODY, identity_mode: 'id-secret', proof_key: null, metadata: null }, 'body');
    expect(checked.proof_key).to.equal(undefined);
    expect(checked.metadata).to.equal(undefined);
  });
});
