import { freshnessBound, livenessFreshnessBound } from '../attestation/freshness.js';
import type { VerifierConfig } from './verifier-config.js';

/**
 * Seconds past which the verifier no longer shows a PASS (`pass`) or a liveness `alive` (`liveness`)
 * as such: read once from the config for the status API and the dashboard alike.
 */
export interface StatusFreshnessBounds {
  readonly pass: number;
  readonly liveness: number;
}

export type FreshnessConfig = Pick<VerifierConfig, 'quoteInterval' | 'retryInterval' | 'maxRetries' | 'exponentialBackoff' | 'requestTimeout' | 'staleAfter'>;

export function statusFreshnessBounds(config: Readonly<FreshnessConfig>): StatusFreshnessBounds {
  return {
    pass: freshnessBound({ ...config, bound: config.staleAfter }),
    liveness: livenessFreshnessBound({ intervalSeconds: config.quoteInterval, timeoutSeconds: config.requestTimeout, maxMisses: config.maxRetries, bound: config.staleAfter }),
  };
}
