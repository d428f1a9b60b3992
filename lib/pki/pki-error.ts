import { IronlimeError, type IronlimeErrorOptions } from '../../interfaces/errors.js';

/** A CA or certificate/key file is missing, unreadable, inconsistent, or a request for one is invalid. */
export class PkiError extends IronlimeError {
  constructor(message: string, options: IronlimeErrorOptions = {}) {
    super('ERR_PKI', message, options);
  }
}
