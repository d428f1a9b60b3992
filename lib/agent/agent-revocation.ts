import type { Logger } from 'pino';
import { InvalidConfig } from '../../interfaces/errors.js';
import { readConfigFileSync } from '../config/read-config-file.js';
import { RevocationReceiver, scriptAction } from '../revocation/revocation-receiver.js';
import { revocationVerifyKey } from '../revocation/revocation-signature.js';

/**
 * The agent's revocation receiver from its configuration: the revocation certificate (or public
 * key) it checks every message against, and the executables it runs for an authentic one. An
 * unreadable or unusable certificate stops the agent at start, not at the first message.
 */
export function revocationReceiver(certFile: string, actions: readonly string[], log: Logger): RevocationReceiver {
  const pem = readConfigFileSync(certFile, 'agent.revocationCertFile');
  let key;
  try {
    key = revocationVerifyKey(pem);
  } catch (cause) {
    throw new InvalidConfig('agent.revocationCertFile', `${certFile} holds no usable certificate or public key`, { cause });
  }
  return new RevocationReceiver({ key, actions: actions.map((file) => scriptAction(file)), log });
}
