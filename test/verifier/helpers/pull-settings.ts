import { compileSeverityPolicy } from '../../../lib/attestation/severity.js';
import type { PullSettings } from '../../../lib/attestation/pull-decision.js';

/** Pull settings of a single round's tests: a 2 s interval, 2 retries 2 s apart with back-off, the default severity, no engine options. */
export const ROUND_TEST_SETTINGS: PullSettings = {
  quoteInterval: 2,
  retryInterval: 2,
  maxRetries: 2,
  exponentialBackoff: true,
  severity: compileSeverityPolicy(),
  engine: {},
};
