import type { InjectionToken } from 'tsyringe';
import type { Database } from './database-factory.js';

/** The tsyringe token under which a container holds the open `Database`. */
export const DATABASE: InjectionToken<Database> = 'ironlime.database';
