import { IronlimeError, type IronlimeErrorOptions } from '../../interfaces/errors.js';

/**
 * The agent cannot use a key a peer sent it: U or V does not decrypt under the NK, or K is asked for
 * before a U and a V matched. Peers see only the message, never the cryptographic cause (STYLE 7).
 */
export class AgentKeyError extends IronlimeError {
  constructor(message: string, options: IronlimeErrorOptions = {}) {
    super('ERR_AGENT_KEY', message, options);
  }
}
