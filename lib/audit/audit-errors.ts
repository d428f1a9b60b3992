import { IronlimeError } from '../../interfaces/errors.js';

/** An audit export line that is not a record: not JSON, a missing or extra field, a wrong type. */
export class AuditFormatError extends IronlimeError {
  constructor(message: string) {
    super('ERR_AUDIT_FORMAT', message);
  }
}
