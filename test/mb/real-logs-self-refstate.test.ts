import { expect } from 'chai';
import { createRefstate } from '../../lib/mb/create-refstate.js';
import { loadLog, SELF_REFSTATE_LOGS } from './mb-vectors.js';

/**
 * Every shipped real log that a refstate can be made from passes the policy with it: createRefstate
 * evaluates its refstate against the same log and throws when the log fails. A new event rule that
 * refuses a healthy boot's event fails here.
 */
describe('mb refstate: every shipped real log passes a refstate made from it', () => {
  for (const { parts, secureBoot } of SELF_REFSTATE_LOGS) {
    it(parts.join('/'), () => {
      const refstate = createRefstate(loadLog(...parts), { withoutSecureBoot: !secureBoot });
      expect(refstate.has_secureboot).to.equal(secureBoot);
    });
  }
});
