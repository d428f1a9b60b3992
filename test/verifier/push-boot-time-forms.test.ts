import { expect } from 'chai';
import { capabilitiesOf } from '../../lib/verifier/push/push-body-decoding.js';
import type { CapabilitiesBody } from '../../lib/verifier/push/push-dtos.js';
import { PushRefused } from '../../lib/verifier/push/push-reply.js';
import { bootTimeSeconds, isBootTime } from '../../lib/verifier/push/boot-time.js';
import { usePushVerifier } from './helpers/push-verifier.js';

/**
 * ISO 8601 forms `Date.parse` cannot read. `IsISO8601({strict: true})` passed them, and their boot time
 * reached the agent's state as NaN: the verdict's write failed for ever (NaN is stored as null in a NOT
 * NULL column), the PATCH never answered, and the silence sweep skipped the agent as being judged.
 */
const UNREADABLE = ['2026-W49-6', '2026-339', '20261205T100000Z', '2026-12-05T10:00:00,5Z'];

type Capabilities = { data: { attributes: { system_info?: { boot_time?: string } } } };

describe('push model: system_info.boot_time forms Date cannot read', function () {
  this.timeout(60_000);
  const push = usePushVerifier();

  it('are refused at phase 1 (400, a JSON:API error), nothing is stored, and the agent then attests with its own boot time', async function () {
    const node = await push.bootNode();
    expect((await push.enrol(node)).status).to.equal(200);
    const token = await node.agent.openSession();
    const rows = async (): Promise<number> => Number(((await push.opened.database.knex('verifier_push_attestations').where({ agent_id: node.uuid }).count({ n: '*' }))[0] as { n: string }).n);
    for (const bootTime of UNREADABLE) {
      const body = (await node.agent.capabilities()) as Capabilities;
      body.data.attributes.system_info = { boot_time: bootTime };
      const refused = await push.call('POST', `/v3.0/agents/${node.uuid}/attestations`, body, token);
      expect(refused.status, `${bootTime}: ${JSON.stringify(refused.body)}`).to.equal(400);
      expect(refused.body['errors'][0]['detail'], bootTime).to.contain('RFC 3339');
    }
    expect(await rows(), 'nothing stored').to.equal(0);
    expect(await node.agent.attestOnce()).to.equal(1);
    expect((await push.stored(node.uuid)).state.attestationCount).to.equal(1);
  });

  it('never reach the state as NaN: decoding a body the DTO did not check refuses them (422)', function () {
    for (const bootTime of UNREADABLE) {
      const body = { data: { type: 'attestation', attributes: { evidence_supported: [{ evidence_class: 'certification', evidence_type: 'tpm_quote', capabilities: {} }], system_info: { boot_time: bootTime } } } };
      let decoded: unknown;
      try {
        decoded = capabilitiesOf(body as unknown as CapabilitiesBody).bootTime;
      } catch (error) {
        expect(error, bootTime).to.be.instanceOf(PushRefused);
        expect((error as PushRefused).status, bootTime).to.equal(422);
        continue;
      }
      expect.fail(`${bootTime} decoded as ${String(decoded)}`);
    }
  });

  // RFC 3339 §5.6: "T" and "Z" may alternatively be lower case. They were refused 400.
  it('takes a lowercase t and z (RFC 3339 §5.6) as the same instant, at phase 1 too (201)', async function () {
    expect(isBootTime('2026-12-05t10:00:00z')).to.equal(true);
    expect(isBootTime('2026-12-05t11:00:00.5+01:00')).to.equal(true);
    expect(bootTimeSeconds('2026-12-05t10:00:00z')).to.equal(bootTimeSeconds('2026-12-05T10:00:00Z'));
    expect(bootTimeSeconds('2026-12-05t11:00:00.5+01:00')).to.equal(bootTimeSeconds('2026-12-05T10:00:00Z'));
    expect(isBootTime('2026-12-05x10:00:00z'), 'no other letter').to.equal(false);
    const node = await push.bootNode();
    expect((await push.enrol(node)).status).to.equal(200);
    const token = await node.agent.openSession();
    const body = (await node.agent.capabilities()) as Capabilities;
    const sent = body.data.attributes.system_info?.boot_time as string;
    expect(sent).to.match(/T.*Z$/);
    body.data.attributes.system_info = { boot_time: sent.toLowerCase() };
    const created = await push.call('POST', `/v3.0/agents/${node.uuid}/attestations`, body, token);
    expect(created.status, JSON.stringify(created.body)).to.equal(201);
    const row = (await push.opened.database.knex('verifier_push_attestations').where({ agent_id: node.uuid, index: 0 }).first()) as { choice: { bootTime?: number } };
    expect(row.choice.bootTime).to.equal(bootTimeSeconds(sent));
  });
});
