import { createSoftwareTpm, type SoftwareTpm } from '../../../lib/tpm-access/software/tpm-adapter.js';
import type { AkInfo, EkInfo } from '../../../lib/tpm-access/tpm-port.js';
import { createRegistrarTestEnvironment, type RegistrarTestEnvironment } from './registrar-fixture.js';

/** A registrar test environment and one software TPM whose EK certificate the environment's EK CA issued. */
export interface SoftwareTpmEnvironment {
  readonly env: RegistrarTestEnvironment;
  readonly tpm: SoftwareTpm;
  readonly ek: EkInfo;
  readonly ak: AkInfo;
}

/**
 * Registers `before`/`after` hooks in the calling `describe` that make the environment and close it;
 * read its fields only from hooks and tests (they throw before the `before` hook ran).
 */
export function useSoftwareTpmEnvironment(): SoftwareTpmEnvironment {
  let made: SoftwareTpmEnvironment | undefined;
  let env: RegistrarTestEnvironment | undefined;
  let tpm: SoftwareTpm | undefined;
  before(async function () {
    env = await createRegistrarTestEnvironment();
    const ca = env.ekCa;
    tpm = await createSoftwareTpm({ issueEkCertificate: (key) => ca.issue(key) });
    made = { env, tpm, ek: await tpm.ensureEk(), ak: await tpm.ensureAk('sha256') };
  });
  after(async function () {
    await tpm?.close();
    env?.dispose();
  });
  const ready = (): SoftwareTpmEnvironment => {
    if (made === undefined) throw new Error('the software TPM environment is made in a before hook: read it from hooks and tests');
    return made;
  };
  return {
    get env() { return ready().env; },
    get tpm() { return ready().tpm; },
    get ek() { return ready().ek; },
    get ak() { return ready().ak; },
  };
}
