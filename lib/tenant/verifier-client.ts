/**
 * Transitional: `VerifierClient` lives in lib/verifier/verifier-client.ts (the client beside its
 * service). drivers/keylime/verifier-agent-view.ts still imports it from here; it is edited on another
 * branch this session, so its import moves at the merge, and then this file is deleted.
 */
export type { VerifierClient } from '../verifier/verifier-client.js';
