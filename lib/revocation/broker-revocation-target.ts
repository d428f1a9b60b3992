import type { BrokerService } from '../broker/broker-service.js';
import type { RevocationTarget } from './revocation-notifier.js';

/**
 * The in-process delivery to a broker: the failed node's sessions and tokens stop releasing resources
 * at once. Only `revocation` messages revoke; a `comm_error` (a node gone silent) does not.
 */
export function brokerRevocationTarget(broker: BrokerService): RevocationTarget {
  return async (message) => {
    if (message.type === 'revocation') {
      await broker.revoke(message.agent_id, `verifier: ${message.event_id}`);
    }
  };
}
