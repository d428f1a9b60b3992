import type { RunningVerifier } from '../../../lib/verifier/verifier-server.js';
import { requested, type PushNode, type PushVerifier, type Reply } from './push-verifier.js';

/** The push boot-log tests' calls: phase 1 and phase 2 by hand, at a chosen verifier process. */

/** The evidence types phase 1 asked for. */
export const types = (reply: Reply): unknown[] => requested(reply).map((item) => (item as { evidence_type: unknown }).evidence_type);

/** The quote's `selected_subjects` in the sha256 bank. */
export const subjects = (reply: Reply): number[] =>
  ((requested(reply)[0] as { chosen_parameters: { selected_subjects: Record<string, number[]> } }).chosen_parameters.selected_subjects['sha256'] ?? []);

/** A little more than the tests' one-second `quote_interval`. */
export const interval = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 1050));

/** Phase 1 at `at` (the suite's verifier by default), with `boot_time` replaced when given. */
export async function capabilities(push: PushVerifier, node: PushNode, token: string, bootTime?: string, at = push.verifier): Promise<Reply> {
  const body = (await node.agent.capabilities()) as { data: { attributes: { system_info: { boot_time: string } } } };
  if (bootTime !== undefined) body.data.attributes.system_info.boot_time = bootTime;
  return push.call('POST', `/v3.0/agents/${node.uuid}/attestations`, body, token, at);
}

/** Phase 2 at `at` with the evidence `next` asked for. */
export async function patch(push: PushVerifier, node: PushNode, token: string, next: Reply, at: RunningVerifier = push.verifier): Promise<Reply> {
  return push.call('PATCH', `/v3.0/agents/${node.uuid}/attestations/latest`, await node.agent.evidence(requested(next)), token, at);
}
