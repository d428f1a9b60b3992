import { expect } from 'chai';
import { checkMissingPcrs } from '../../lib/attestation/pcr-checks.js';
import { parseTpmPolicy } from '../../lib/attestation/tpm-policy.js';

describe('checkMissingPcrs', () => {
  const policy = parseTpmPolicy({ 7: ['00'.repeat(32)], 2: ['00'.repeat(32)] });
  const quoted = (...pcrs: number[]): Map<number, Uint8Array> => new Map(pcrs.map((pcr) => [pcr, new Uint8Array(32)]));

  it('lists every required PCR the quote lacks once, in ascending order', () => {
    const [event] = checkMissingPcrs(quoted(0), policy, [10, 3, 7]);
    expect(event?.eventId).to.equal('pcr_validation.missing_pcrs');
    expect(event?.context).to.deep.equal({ context: 'PCRs are missing in quote', data: [2, 3, 7, 10] });
  });

  it('reports nothing when the quote carries them all', () => {
    expect(checkMissingPcrs(quoted(2, 3, 7, 10), policy, [10, 3])).to.deep.equal([]);
    expect(checkMissingPcrs(quoted(), parseTpmPolicy({}))).to.deep.equal([]);
  });
});
