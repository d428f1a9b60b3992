import { expect } from 'chai';
import { dashboardPerSuite } from './dashboard-viewer.js';

describe('dashboard: NUL and other control characters in a query or a path', function () {
  this.timeout(60_000);
  const dashboard = dashboardPerSuite('ironlime-dashboard-ctl-');
  const get = (url: string) => dashboard.get(url);

  it('searches for a NUL or a control character as for any text no node matches', async function () {
    for (const q of ['%00', 'a%00b', '%01', '%1B%5B31m', '%7F']) {
      const page = await get(`/dashboard/nodes?q=${q}`);
      expect(page.status, q).to.equal(200);
      expect(page.body, q).to.include('0 node(s), page 1 of 1');
    }
  });

  it('answers 404 without echoing the id asked for: a link cannot put its own words on a dashboard page', async function () {
    const words = 'Session expired: log in again at evil.example';
    for (const id of [encodeURIComponent(words), `x${encodeURIComponent('\u202e')}moc.elpmaxe`, 'a'.repeat(200)]) {
      const page = await get(`/dashboard/nodes/${id}`);
      expect(page.status, id).to.equal(404);
      expect(page.body, id).to.not.include(decodeURIComponent(id));
      expect(page.body, id).to.include('No such node that you can see.');
    }
  });

  it('answers 404 to a node id holding a NUL or a control character', async function () {
    for (const id of ['a%00b', '%00', 'a%0Ab', 'a%1Fb']) {
      const page = await get(`/dashboard/nodes/${id}`);
      expect(page.status, id).to.equal(404);
      expect(page.body, id).to.include('that you can see.');
    }
  });
});
