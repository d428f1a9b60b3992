import path from 'node:path';
import { writeFile } from 'node:fs/promises';
import { expect } from 'chai';
import { InvalidConfig } from '../../interfaces/errors.js';
import { loadTrustedClientCa } from '../../lib/agent/agent-files.js';
import { createCertificateAuthority } from '../../lib/pki/certificate-authority.js';
import { PkiError } from '../../lib/pki/pki-error.js';
import { caDirOf } from '../../lib/pki/service-tls.js';
import { rejectionOf } from '../helpers/rejection.js';
import { tempDirPerTest } from '../helpers/temp-dir.js';
import { DAY_MS, datedCa, writeCaFolder } from '../pki/dated-ca.js';

/** The agent's `trusted_client_ca`: a CA that is not valid now is refused at start, one ending soon is warned of. */
describe('agent: the trusted client CA is checked for its dates', function () {
  const temp = tempDirPerTest('ironlime-client-ca-');

  it('refuses an expired CA file, naming the file and the date', async function () {
    const file = path.join(temp.path, 'client-ca.pem');
    const valid = createCertificateAuthority().certPem;
    await writeFile(file, valid + datedCa(Date.now() - 400 * DAY_MS, Date.now() - DAY_MS).certPem);
    const error = await rejectionOf(loadTrustedClientCa(temp.path, file, () => undefined), InvalidConfig);
    expect(error.message).to.include(`${file} (certificate 2) expired on`);
  });

  it('refuses a CA file not yet valid', async function () {
    const file = path.join(temp.path, 'client-ca.pem');
    await writeFile(file, datedCa(Date.now() + DAY_MS, Date.now() + 400 * DAY_MS).certPem);
    expect((await rejectionOf(loadTrustedClientCa(temp.path, file, () => undefined), InvalidConfig)).message).to.include(`${file} not valid before`);
  });

  it('accepts a CA file dated a minute ahead of this clock (clock skew with the host that made it)', async function () {
    const file = path.join(temp.path, 'client-ca.pem');
    const ahead = datedCa(Date.now() + 60_000, Date.now() + 400 * DAY_MS).certPem;
    await writeFile(file, ahead);
    expect(await loadTrustedClientCa(temp.path, file, () => undefined)).to.equal(ahead);
  });

  it('refuses an expired CA in the data dir', async function () {
    await writeCaFolder(caDirOf(temp.path), datedCa(Date.now() - 400 * DAY_MS, Date.now() - DAY_MS));
    expect((await rejectionOf(loadTrustedClientCa(temp.path, undefined, () => undefined), PkiError)).message).to.include('cacert.crt expired on');
  });

  it('loads a CA ending in 10 days, with a warning; a CA with years left without one', async function () {
    const file = path.join(temp.path, 'client-ca.pem');
    const ending = datedCa(Date.now() - DAY_MS, Date.now() + 10 * DAY_MS).certPem;
    await writeFile(file, ending);
    const warnings: string[] = [];
    expect(await loadTrustedClientCa(temp.path, file, (message) => warnings.push(message))).to.equal(ending);
    expect(await loadTrustedClientCa(temp.path, undefined, (message) => warnings.push(message))).to.include('BEGIN CERTIFICATE');
    expect(warnings).to.have.length(1);
    expect(warnings[0]).to.match(new RegExp(`^client CA ${file} expires on .* days left\\)`));
  });
});
