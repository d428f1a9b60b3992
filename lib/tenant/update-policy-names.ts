import { InvalidParameterValue } from '../../interfaces/errors.js';
import { KeylimeHttpError } from '../http/client-errors.js';
import type { VerifierClient } from '../verifier/verifier-client.js';
import type { CheckedEnrolmentPolicies } from './enrolment-request.js';

/** What the check reads of a stored policy: who else is enrolled with it. */
interface InUse {
  readonly agents_using?: readonly string[] | undefined;
}

/**
 * Refuses, before `update` deletes the old enrolment, a new one the verifier would refuse by its
 * policy names once the old one is gone, which would leave the agent enrolled nowhere:
 * - a stored policy used by name that the verifier does not hold (404 at the add), or that is stored
 *   under the agent's own id — the verifier deletes those with the old enrolment (`VerifierAgentRepository.delete`);
 * - a new policy under an explicit name the verifier already holds (409 at the add);
 * - a new policy under the agent's id (the default name) while another agent uses the policy stored
 *   under it: the delete keeps that one (ironlime's verifier lists its users in `agents_using`; a
 *   Keylime verifier does not, and the name is then left to it).
 * @throws InvalidParameterValue
 */
export async function checkReplacementPolicyNames(verifier: VerifierClient, agentId: string, policies: CheckedEnrolmentPolicies): Promise<void> {
  const kinds = [
    { field: 'runtime_policy_name', name: policies.runtimePolicyName ?? '', given: policies.runtimePolicy !== '', stored: (name: string): Promise<InUse> => verifier.showRuntimePolicy(name) },
    { field: 'mb_policy_name', name: policies.mbPolicyName, given: policies.mbPolicy !== null, stored: (name: string): Promise<InUse> => verifier.showMbPolicy(name) },
  ];
  for (const { field, given, stored, ...named } of kinds) {
    // A policy given without a name is stored under the agent's id (Keylime's default).
    const name = named.name === '' && given ? agentId : named.name;
    if (name === '') continue;
    if (given && name === agentId) {
      const others = (await storedOrUndefined(stored(name)))?.agents_using?.filter((id) => id !== agentId) ?? [];
      if (others.length > 0) {
        throw new InvalidParameterValue(
          field,
          `the policy stored under the agent's own id is also used by agent ${others.join(', ')}: the verifier keeps it when the old enrolment is deleted, so the new policy could not be stored under that name; give the new policy another name`,
        );
      }
      continue;
    }
    if (!given && name === agentId) {
      throw new InvalidParameterValue(
        field,
        `${name} is the agent's own id: the verifier deletes the policy stored under it with the old enrolment, so the new one could not use it; give the policy file again, or store it under another name first`,
      );
    }
    const exists = (await storedOrUndefined(stored(name))) !== undefined;
    if (exists && given) {
      throw new InvalidParameterValue(field, `the verifier already stores a policy named ${name}: the new enrolment would be refused after the old one was deleted; choose another name`);
    }
    if (!exists && !given) {
      throw new InvalidParameterValue(field, `the verifier stores no policy named ${name}: the new enrolment would be refused after the old one was deleted`);
    }
  }
}

/** The stored policy `read` answers, or undefined when the verifier holds none of that name (404). */
async function storedOrUndefined<T>(read: Promise<T>): Promise<T | undefined> {
  try {
    return await read;
  } catch (error) {
    if (error instanceof KeylimeHttpError && error.remoteHttpStatus === 404) return undefined;
    throw error;
  }
}
