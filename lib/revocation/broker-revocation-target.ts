import type { BrokerService } from '../broker/broker-service.js';
import type { RevocationTarget } from './revocation-notifier.js';

/**
 * The in-process delivery to a broker: the failed node's sessions and tokens stop releasing resources
 * at once. Only `revocation` messages revoke, each once: the same message again does nothing, also
 * after a reinstatement (`BrokerService.revokeByMessage`); a `comm_error` (a node gone silent) does not.
 */
export function brokerRevocationTarget(broker: BrokerService): RevocationTarget {
  return async (message) => {
    await broker.revocations.revokeByMessage(message);
  };
}
