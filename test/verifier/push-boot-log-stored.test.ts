import { createHash } from 'node:crypto';
import { expect } from 'chai';
import { PushBootLogStore } from '../../lib/verifier/push/push-boot-log-store.js';
import { startVerifier, type RunningVerifier } from '../../lib/verifier/verifier-server.js';
import { capabilities, interval, patch, types } from './helpers/push-boot-log-calls.js';
import { PUSH_SETTINGS, usePushVerifier, type PushNode } from './helpers/push-verifier.js';

/** A silence timeout far beyond the waits below (see push.test.ts). */
const SETTINGS = { ...PUSH_SETTINGS, pushTimeout: 60 };
const BOOT_LOGS = 'verifier_push_boot_logs';

/**
 * The verified boot log stored in the database (migration 20261205003000): evidence asked without the
 * log at one verifier process is judged at any other on the same database, after a restart too; a
 * failing verdict tombstones it; it is written once per boot; a read that fails refuses (503), nothing taken.
 */
describe('push boot logs stored for every verifier process', function () {
  this.timeout(60_000);
  const push = usePushVerifier({ pushTimeout: SETTINGS.pushTimeout });
  const knex = () => push.opened.database.knex;
  /** The agent's stored log, as a row (none when there is none or a failure tombstoned it). */
  const rows = async (uuid: string) =>
    (await knex()(BOOT_LOGS).where({ agent_id: uuid }).whereNotNull('event_log').select('boot_time', knex().raw('xmin::text as xmin'))) as { boot_time: string; xmin: string }[];
  const outcomes = async (uuid: string) => (await push.history(uuid)).map((row) => row.outcome);
  const other = (instanceId: string): Promise<RunningVerifier> =>
    startVerifier({ dataDir: push.dir, ...SETTINGS, instanceId }, { database: push.opened.database, inProcessForTests: true });

  /** A node enrolled at the suite's verifier that passed there once, with the log, a quote interval ago. */
  async function attestedNode(): Promise<{ node: PushNode; token: string }> {
    const node = await push.bootNode();
    await push.enrol(node);
    expect(await node.agent.attestOnce()).to.equal(1);
    await interval();
    return { node, token: await node.agent.openSession() };
  }

  it('phase 2 at another process is judged with the stored log (202 and a verdict, not 503), also after that process restarts; its phase 1 leaves the log out', async function () {
    const { node, token } = await attestedNode();
    expect(await rows(node.uuid)).to.have.length(1);
    let second = await other('stored-log-second');
    try {
      const held = await capabilities(push, node, token);
      expect(types(held)).to.not.include('uefi_log');
      expect((await patch(push, node, token, held, second)).status).to.equal(202);
      expect(await outcomes(node.uuid)).to.deep.equal(['pass', 'pass']);
      await second.close();
      second = await other('stored-log-second');
      await interval();
      const again = await capabilities(push, node, token);
      expect(types(again)).to.not.include('uefi_log');
      expect((await patch(push, node, token, again, second)).status, 'judged after the restart').to.equal(202);
      await second.close();
      second = await other('stored-log-second');
      await interval();
      const there = await capabilities(push, node, token, undefined, second);
      expect(there.status).to.equal(201);
      expect(types(there), 'phase 1 at a process that restarted').to.not.include('uefi_log');
      expect((await patch(push, node, token, there, second)).status).to.equal(202);
      expect(await outcomes(node.uuid)).to.deep.equal(['pass', 'pass', 'pass', 'pass']);
    } finally {
      await second.close();
    }
  });

  it('a process whose phase 1 came before any log was stored finds it once another process stored it: its next phase 1 leaves the log out', async function () {
    const node = await push.bootNode();
    await push.enrol(node);
    const token = await node.agent.openSession();
    const second = await other('stored-log-chooser');
    try {
      const first = await capabilities(push, node, token, undefined, second);
      expect(first.status).to.equal(201);
      expect(types(first)).to.include('uefi_log');
      expect((await patch(push, node, token, first)).status).to.equal(202);
      expect(await rows(node.uuid)).to.have.length(1);
      await interval();
      const next = await capabilities(push, node, token, undefined, second);
      expect(next.status).to.equal(201);
      expect(types(next), 'phase 1 at the process that chose before the log was stored').to.not.include('uefi_log');
      expect((await patch(push, node, token, next)).status).to.equal(202);
      expect(await outcomes(node.uuid)).to.deep.equal(['pass', 'pass']);
    } finally {
      await second.close();
    }
  });

  it('a boot PCR extended at runtime fails at the other process with the stored log; the failure tombstones it and the next phase 1 asks for the log', async function () {
    const { node, token } = await attestedNode();
    const second = await other('stored-log-tampered');
    try {
      await node.tpm.extendPcr(1, 'sha256', new Uint8Array(createHash('sha256').update('runtime change').digest()));
      const held = await capabilities(push, node, token);
      expect(types(held)).to.not.include('uefi_log');
      expect((await patch(push, node, token, held, second)).status).to.equal(202);
      const history = await push.history(node.uuid);
      expect(history.map((row) => row.outcome)).to.deep.equal(['pass', 'fail']);
      expect(history.at(-1)?.failures.map((failure) => failure.event_id)).to.include('measured_boot.invalid_pcr_1');
      expect(await rows(node.uuid), 'the stored log').to.have.length(0);
      await interval();
      const next = await capabilities(push, node, token);
      expect(next.status).to.equal(201);
      expect(types(next), 'phase 1 at the process still holding the log').to.include('uefi_log');
    } finally {
      await second.close();
    }
  });

  it('a process holding the log of an older enrolment of the same boot reads the new enrolment\'s stored log and holds it: its phase 1 leaves the log out, its phase 2 passes', async function () {
    const { node } = await attestedNode();
    const second = await other('stored-log-reenrolled');
    try {
      // Deleted at the second process (a DELETE here would wake this process's scheduler, which forgets its held
      // log), enrolled again here: this process still holds the first enrolment's log of the same boot.
      await push.reenrol(node, second);
      const token = await node.agent.openSession();
      const first = await capabilities(push, node, token, undefined, second);
      expect(types(first), 'the new enrolment\'s first phase 1').to.include('uefi_log');
      expect((await patch(push, node, token, first, second)).status).to.equal(202);
      expect(await rows(node.uuid)).to.have.length(1);
      await interval();
      const held = await capabilities(push, node, token);
      expect(held.status).to.equal(201);
      expect(types(held), 'phase 1 at the process that held the older enrolment\'s log').to.not.include('uefi_log');
      expect((await patch(push, node, token, held)).status).to.equal(202);
      expect(await outcomes(node.uuid)).to.deep.equal(['pass', 'pass', 'pass']);
    } finally {
      await second.close();
    }
  });

  it('is written once per boot: a second pass with the log of the same boot leaves the row as it is; a new boot_time replaces it', async function () {
    const { node, token } = await attestedNode();
    const [written] = await rows(node.uuid);
    const abandoned = await capabilities(push, node, token);
    expect(types(abandoned)).to.not.include('uefi_log');
    // A phase 1 while the abandoned one awaits its evidence is 429 until quote_interval has passed since it was created.
    await interval();
    const asked = await capabilities(push, node, token);
    expect(types(asked), 'after an attestation asked without the log and never answered').to.include('uefi_log');
    expect((await patch(push, node, token, asked)).status).to.equal(202);
    expect(await rows(node.uuid), 'not written again').to.deep.equal([written]);
    await interval();
    const rebootedAt = new Date(Date.now() - 1000);
    const rebooted = await capabilities(push, node, token, rebootedAt.toISOString().replace(/\.\d{3}Z$/, 'Z'));
    expect(types(rebooted)).to.include('uefi_log');
    expect((await patch(push, node, token, rebooted)).status).to.equal(202);
    const after = await rows(node.uuid);
    expect(after.map((row) => Number(row.boot_time))).to.deep.equal([Math.floor(rebootedAt.getTime() / 1000)]);
    expect(await outcomes(node.uuid)).to.deep.equal(['pass', 'pass', 'pass']);
  });

  it('a stored log that cannot be read is not judged without: 503 boot_log_not_held, the evidence not taken (the same PATCH is judged once the read works)', async function () {
    const { node, token } = await attestedNode();
    const second = await other('stored-log-unread');
    try {
      const held = await capabilities(push, node, token);
      expect(types(held)).to.not.include('uefi_log');
      // The log's read fails (the agent's row, with the stored log's boot time, is read as usual).
      const read = Object.getOwnPropertyDescriptor(PushBootLogStore.prototype, 'read') as PropertyDescriptor;
      Object.defineProperty(PushBootLogStore.prototype, 'read', { ...read, value: () => Promise.reject(new Error('the boot log read failed')) });
      let refused;
      try {
        refused = await patch(push, node, token, held, second);
      } finally {
        Object.defineProperty(PushBootLogStore.prototype, 'read', read);
      }
      expect(refused.status).to.equal(503);
      expect(refused.body['errors'][0]['code']).to.equal('boot_log_not_held');
      expect(await outcomes(node.uuid)).to.deep.equal(['pass']);
      const latest = await push.call('GET', `/v3.0/agents/${node.uuid}/attestations/latest`, undefined, token);
      expect(latest.body['data']['attributes']['stage']).to.equal('awaiting_evidence');
      expect((await patch(push, node, token, held, second)).status).to.equal(202);
      expect(await outcomes(node.uuid)).to.deep.equal(['pass', 'pass']);
    } finally {
      await second.close();
    }
  });
});
