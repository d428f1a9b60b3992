import { expect } from 'chai';
import { pushFleetLine } from '../../bench/push-fleet-line.js';

describe('bench: the push fleet line', function () {
  it("names the fleet's share of a core, its event-loop delay and an agent's cycle past the verifier's wait", function () {
    // 1,000 agents, 40 s, 16,000 attestations: 400/s, a cycle of 2.5 s of which 0.5 s is the attestation itself.
    const line = pushFleetLine(1000, 40, 2, { attestations: 16_000, fleetCpu: 0.42, fleetLoopDelayMs: { p50: 10.1, p99: 31.6, max: 80.2 } });
    expect(line).to.equal(
      "push fleet at 1000 agents: 42 % of a core, event-loop delay p99 32 ms (max 80 ms), an agent's cycle 2.50 s (the 2 s wait + 0.50 s from its capabilities to the 202)",
    );
  });

  it('says so when the window held no attestation instead of dividing by zero', function () {
    const line = pushFleetLine(10, 40, 2, { attestations: 0, fleetCpu: 0.01, fleetLoopDelayMs: { p50: 10, p99: 10, max: 12 } });
    expect(line).to.match(/no attestation$/);
  });
});
