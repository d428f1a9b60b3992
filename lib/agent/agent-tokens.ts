import type { Logger } from 'pino';
import type { InjectionToken } from 'tsyringe';
import type { AgentConfig } from './agent-config.js';
import type { AgentApiContext } from './agent-routes.js';

/** The agent's frozen config in its child container. */
export const AGENT_CONFIG: InjectionToken<Readonly<AgentConfig>> = 'ironlime.agent.config';
/** The agent's pino logger in its child container. */
export const AGENT_LOGGER: InjectionToken<Logger> = 'ironlime.agent.logger';
/** What the agent's routes serve from (identity, quoter, keys, evidence files). */
export const AGENT_API_CONTEXT: InjectionToken<AgentApiContext> = 'ironlime.agent.api-context';
