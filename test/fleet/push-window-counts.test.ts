import { expect } from 'chai';
import { pushWindowCounts, type PushVerdictRow } from '../../bench/push-window-counts.js';

const EVENT = 'ima.validation.ima-ng.not_in_allowlist';

function verdict(agentId: string, at: number, outcome: string, events: string[] = []): PushVerdictRow {
  return { agent_id: agentId, attempted_at: new Date(at), outcome, failures: events.map((event_id) => ({ event_id })) };
}

describe('bench: the push window counts', function () {
  it('counts a tampered agent as detected only when its first failure after the tampering names the expected event', function () {
    const rows = [
      verdict('caught', 1000, 'pass'),
      verdict('caught', 3000, 'fail', [EVENT]),
      // Failed after its tampering, but for its silence: not a detection.
      verdict('silent', 1000, 'pass'),
      verdict('silent', 4000, 'fail', ['push.liveness.timeout']),
      verdict('silent', 5000, 'fail', [EVENT]),
      verdict('good', 1000, 'pass'),
      verdict('good', 2000, 'fail', ['quote_validation']),
      verdict('good', 12_000, 'pass'),
    ];
    const counts = pushWindowCounts(rows, new Map([['caught', 2000], ['silent', 2000]]), new Date(10_000), EVENT);
    expect(counts).to.deep.equal({ attestations: 3, failures: 1, detected: 1 });
  });
});
