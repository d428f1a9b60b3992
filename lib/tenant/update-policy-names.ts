import { InvalidParameterValue } from '../../interfaces/errors.js';
import { KeylimeHttpError } from '../http/client-errors.js';
import type { VerifierClient } from '../verifier/verifier-client.js';
import type { CheckedEnrolmentPolicies } from './enrolment-request.js';

/**
 * Refuses, before `update` deletes the old enrolment, a new one the verifier would refuse by its
 * policy names once the old one is gone, which would leave the agent enrolled nowhere:
 * - a stored policy used by name that the verifier does not hold (404 at the add), or that is stored
 *   under the agent's own id — the verifier deletes those with the old enrolment (`VerifierAgentRepository.delete`);
 * - a new policy under an explicit name the verifier already holds (409 at the add).
 * A new policy under the agent's id (the default name) is left to the verifier: the delete frees it.
 * @throws InvalidParameterValue
 */
export async function checkReplacementPolicyNames(verifier: VerifierClient, agentId: string, policies: CheckedEnrolmentPolicies): Promise<void> {
  const kinds = [
    { field: 'runtime_policy_name', name: policies.runtimePolicyName ?? '', given: policies.runtimePolicy !== '', stored: (name: string) => verifier.showRuntimePolicy(name) },
    { field: 'mb_policy_name', name: policies.mbPolicyName, given: policies.mbPolicy !== null, stored: (name: string) => verifier.showMbPolicy(name) },
  ];
  for (const { field, name, given, stored } of kinds) {
    if (name === '' || (given && name === agentId)) continue;
    if (!given && name === agentId) {
      throw new InvalidParameterValue(
        field,
        `${name} is the agent's own id: the verifier deletes the policy stored under it with the old enrolment, so the new one could not use it; give the policy file again, or store it under another name first`,
      );
    }
    const exists = await stored(name).then(
      () => true,
      (error: unknown) => {
        if (error instanceof KeylimeHttpError && error.remoteHttpStatus === 404) return false;
        throw error;
      },
    );
    if (exists && given) {
      throw new InvalidParameterValue(field, `the verifier already stores a policy named ${name}: the new enrolment would be refused after the old one was deleted; choose another name`);
    }
    if (!exists && !given) {
      throw new InvalidParameterValue(field, `the verifier stores no policy named ${name}: the new enrolment would be refused after the old one was deleted`);
    }
  }
}
