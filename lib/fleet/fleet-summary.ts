import { OPERATIONAL_STATE_LABELS, type OperationalState } from '../attestation/operational-state.js';
import type { TenantClient } from '../tenant/tenant-client.js';

/**
 * One line on the fleet's agents as the verifier sees them, e.g.
 * `1000 agents: Get Quote 998, Invalid Quote 2; 41873 attestations`, from one bulk status request
 * (`GET /agents?bulk`) restricted to `agentIds`.
 */
export async function fleetSummary(tenant: TenantClient, agentIds: readonly string[]): Promise<string> {
  const statuses = await tenant.verifier.bulkStatus();
  const counts = new Map<string, number>();
  let attestations = 0;
  let missing = 0;
  for (const id of agentIds) {
    const status = statuses[id] as { operational_state?: unknown; attestation_count?: unknown } | undefined;
    if (status === undefined) {
      missing += 1;
      continue;
    }
    const label = OPERATIONAL_STATE_LABELS[status.operational_state as OperationalState] ?? `state ${String(status.operational_state)}`;
    counts.set(label, (counts.get(label) ?? 0) + 1);
    attestations += typeof status.attestation_count === 'number' ? status.attestation_count : 0;
  }
  const states = [...counts].map(([label, count]) => `${label} ${count}`);
  if (missing > 0) {
    states.push(`not at the verifier ${missing}`);
  }
  return `${agentIds.length} agents: ${states.join(', ')}; ${attestations} attestations`;
}
