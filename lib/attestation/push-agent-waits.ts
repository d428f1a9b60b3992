/**
 * How a push agent spreads its waits after a failure, shared by the agent that draws them
 * (`lib/agent/push/failure-wait.ts`) and the verifier that allows for them after its own outage
 * (`verifierOutageDeadline`), so that the two cannot drift apart: ±25 % around a back-off wait, +0 … 25 %
 * above a wait the verifier named. A fleet that failed together then does not come back in step.
 */
export const PUSH_AGENT_WAIT_JITTER = 0.25;

/**
 * The longest back-off wait a push agent computes before its jitter: Keylime's agent default
 * (`exponential_backoff_max_delay`, 300 s), and ours.
 */
export const PUSH_AGENT_BACKOFF_CAP_MS = 300_000;
