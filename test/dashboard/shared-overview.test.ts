import { expect } from 'chai';
import type { FleetOverview } from '../../lib/dashboard/dashboard-queries.js';
import { SharedOverview } from '../../lib/dashboard/shared-overview.js';

/** An overview that says which tenant and which read it came from. */
const overviewOf = (tenant: string | undefined, read: number): FleetOverview => ({ total: read, byState: [{ state: 3, label: String(tenant), count: read }] }) as unknown as FleetOverview;

/** The live-update streams' overview: once per tenant per tick, one read at a time, failures not kept. */
describe('shared overview: one read per tenant per tick for every stream', () => {
  let clock = 0;
  let reads: (string | undefined)[] = [];
  let running = 0;
  let mostRunning = 0;
  let fail = false;
  const read = async (tenant: string | undefined): Promise<FleetOverview> => {
    reads.push(tenant);
    running += 1;
    mostRunning = Math.max(mostRunning, running);
    await new Promise((resolve) => setTimeout(resolve, 5));
    running -= 1;
    if (fail) throw new Error('database down');
    return overviewOf(tenant, reads.length);
  };

  beforeEach(() => {
    [clock, reads, running, mostRunning, fail] = [0, [], 0, 0, false];
  });

  it('32 streams of one tenant share one read while it runs and until the tick is over', async () => {
    const shared = new SharedOverview(read, 2000, () => clock);
    const first = await Promise.all(Array.from({ length: 32 }, () => shared.get('a')));
    expect(reads).to.deep.equal(['a']);
    expect(new Set(first).size).to.equal(1);
    clock = 1999;
    await shared.get('a');
    expect(reads).to.have.length(1);
    clock = 2000;
    expect((await shared.get('a')).total).to.equal(2);
  });

  it('reads each tenant (and every tenant, for a certificate) apart, one read at a time', async () => {
    const shared = new SharedOverview(read, 2000, () => clock);
    const got = await Promise.all(['a', 'b', undefined, 'a', 'b', undefined, 'c'].map((tenant) => shared.get(tenant)));
    expect(reads).to.deep.equal(['a', 'b', undefined, 'c']);
    expect(got.map((overview) => overview.byState[0]?.label)).to.deep.equal(['a', 'b', 'undefined', 'a', 'b', 'undefined', 'c']);
    expect(mostRunning).to.equal(1);
  });

  it('keeps no failed read: the next tick reads again, and a failure does not stop the queue', async () => {
    const shared = new SharedOverview(read, 2000, () => clock);
    fail = true;
    const failed = await Promise.allSettled([shared.get('a'), shared.get('a')]);
    expect(failed.map((outcome) => outcome.status)).to.deep.equal(['rejected', 'rejected']);
    fail = false;
    expect((await shared.get('a')).total).to.equal(2);
    expect(reads).to.deep.equal(['a', 'a']);
  });
});
