import type { VerifierPopulation } from './verifier-process-repository.js';

/** What one process does with its share at a lease sweep. */
export interface ShareDecision {
  /** Most agents it may claim now. */
  readonly claim: number;
  /** Agents it holds above its share, to let go of now (0 = none). */
  readonly release: number;
  /** ⌈agents / live processes⌉, and what it holds now. */
  readonly share: number;
  readonly held: number;
}

/**
 * Each of the live processes holds at most ⌈agents / processes⌉ of the verifier's agents. Rounding up
 * makes the shares cover every agent, so a process never waits for work nobody may claim, and none
 * lets go of an agent that another would then have to give back. A process that sees no live process
 * (its own beat not yet visible) takes everything, as a single verifier does.
 */
export function decideShare(population: VerifierPopulation, held: number): ShareDecision {
  const processes = Math.max(1, population.liveProcesses);
  const share = Math.ceil(population.claimableAgents / processes);
  return { claim: Math.max(0, share - held), release: Math.max(0, held - share), share, held };
}
