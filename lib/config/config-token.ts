import type { InjectionToken } from 'tsyringe';
import type { IronlimeSettings } from '../../interfaces/settings.js';

/** The tsyringe token under which a container holds the frozen configuration. */
export const IRONLIME_CONFIG: InjectionToken<IronlimeSettings> = 'ironlime.config';
