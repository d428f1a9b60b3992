import type { Logger } from 'pino';
import type { InjectionToken } from 'tsyringe';
import type { RegistrarConfig } from './registrar-config.js';

/** The registrar's frozen config in its child container. */
export const REGISTRAR_CONFIG: InjectionToken<Readonly<RegistrarConfig>> = 'ironlime.registrar.config';
/** The registrar's pino logger in its child container. */
export const REGISTRAR_LOGGER: InjectionToken<Logger> = 'ironlime.registrar.logger';
