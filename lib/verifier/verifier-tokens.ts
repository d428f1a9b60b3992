import type { Knex } from 'knex';
import type { Logger } from 'pino';
import type { InjectionToken } from 'tsyringe';
import type { DatabaseClock } from '../db/database-clock.js';
import type { VerifierConfig } from './verifier-config.js';

/** The verifier's frozen config in its child container. */
export const VERIFIER_CONFIG: InjectionToken<Readonly<VerifierConfig>> = 'ironlime.verifier.config';
/** The verifier's pino logger. */
export const VERIFIER_LOGGER: InjectionToken<Logger> = 'ironlime.verifier.logger';
/** The knex instance of the verifier's database. */
export const VERIFIER_KNEX: InjectionToken<Knex> = 'ironlime.verifier.knex';
/** This process's name in the agents' `owner` column. */
export const VERIFIER_OWNER: InjectionToken<string> = 'ironlime.verifier.owner';
/** The database's clock, measured by this process: every time the verifier stores or judges is on it. */
export const VERIFIER_CLOCK: InjectionToken<DatabaseClock> = 'ironlime.verifier.clock';
