import { expect } from 'chai';
import { livenessBody, useTokenVerifier } from './helpers/token-verifier.js';

/**
 * A liveness enrolment's `ip` becomes the host of every check's URL, and its `mtls_cert` the pinned
 * certificate. Text the pattern let through but no URL takes ("1.2.3.4.5", "a:b"), or PEM of no
 * certificate, was stored, and then every check of the node threw before it asked: the enrolment
 * answered 500, the node stayed `pending` with no reason for good, and every sweep failed.
 */
describe('liveness enrolment: an address or certificate no check could use', function () {
  this.timeout(60_000);
  const harness = useTokenVerifier();

  /**
   * A sweep that began after this call: `checkNow` joins a sweep under way, which may have read the
   * node before the test changed its row, so the sweep after that one is the one that must see it.
   */
  async function sweepAfterNow(): Promise<void> {
    await harness.verifier.liveness.checkNow();
    await harness.verifier.liveness.checkNow();
  }

  it('is refused with 400 and nothing is stored', async function () {
    const token = await harness.token('operator', 'default');
    for (const ip of ['1.2.3.4.5', '999.1.1.1', 'a:b', 'fe80::1:2:3:4:5:6:7:8']) {
      const reply = await harness.call('POST', '/v2.3/liveness/bad-address-node', token, { ...livenessBody(harness.verifier.caCert), ip });
      expect(reply.status, `${ip}: ${reply.body}`).to.equal(400);
      expect(reply.body).to.contain('body.ip');
      expect(await harness.knex('verifier_liveness').where({ agent_id: 'bad-address-node' }).first(), ip).to.equal(undefined);
    }
  });

  it('still takes IPv4, IPv6 and host names', async function () {
    const token = await harness.token('operator', 'default');
    for (const ip of ['127.0.0.1', '::1', 'node-7.example.org', 'localhost']) {
      const reply = await harness.call('POST', '/v2.3/liveness/good-address-node', token, { ...livenessBody(harness.verifier.caCert), ip });
      expect(reply.status, `${ip}: ${reply.body}`).to.equal(200);
    }
  });

  it('stored before this check (an older verifier took it) is a miss of that node, not a failed sweep', async function () {
    const token = await harness.token('operator', 'default');
    expect((await harness.call('POST', '/v2.3/liveness/stored-bad-node', token, livenessBody(harness.verifier.caCert))).status).to.equal(200);
    await harness.knex('verifier_liveness').where({ agent_id: 'stored-bad-node' }).update({ ip: '1.2.3.4.5', misses: 0 });
    await sweepAfterNow();
    const row = (await harness.knex('verifier_liveness').where({ agent_id: 'stored-bad-node' }).first()) as { misses: number };
    expect(row.misses).to.be.at.least(1);
  });

  it('a certificate no check could pin (PEM of no certificate) is refused with 400 as well, and a stored one is a miss', async function () {
    const token = await harness.token('operator', 'default');
    const unreadable = '-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n';
    const reply = await harness.call('POST', '/v2.3/liveness/bad-cert-node', token, { ...livenessBody(harness.verifier.caCert), mtls_cert: unreadable });
    expect(reply.status, reply.body).to.equal(400);
    expect(reply.body).to.contain('body.mtls_cert');
    expect(await harness.knex('verifier_liveness').where({ agent_id: 'bad-cert-node' }).first()).to.equal(undefined);

    expect((await harness.call('POST', '/v2.3/liveness/stored-bad-cert-node', token, livenessBody(harness.verifier.caCert))).status).to.equal(200);
    await harness.knex('verifier_liveness').where({ agent_id: 'stored-bad-cert-node' }).update({ mtls_cert: unreadable, misses: 0 });
    await sweepAfterNow();
    const row = (await harness.knex('verifier_liveness').where({ agent_id: 'stored-bad-cert-node' }).first()) as { misses: number };
    expect(row.misses).to.be.at.least(1);
  });
});
