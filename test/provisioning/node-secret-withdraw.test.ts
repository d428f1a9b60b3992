import { expect } from 'chai';
import { KbsRefusedError } from '../../lib/kbs-client/kbs-client-errors.js';
import { NodeSecretRelease } from '../../lib/provisioning/node-secret-release.js';

const AGENT = '6f0c1e2a-8b4d-4c9e-a1f3-5d7b9e2c4a60';
const NODE = { uuid: 'n1', driverInfo: { keylime_agent_uuid: AGENT } };

function brokerError(status: number): KbsRefusedError {
  return new KbsRefusedError('https://broker/kbs/v0/admin', status, 'InternalError', `status ${status}`);
}

/** A broker whose `revoke` and `deleteResource` record their calls and fail as told. */
function stubBroker(fail: { revoke?: number; deleteResource?: number }): { calls: string[]; broker: never } {
  const calls: string[] = [];
  const broker = {
    revoke: async (agentId: string) => {
      calls.push(`revoke ${agentId}`);
      if (fail.revoke !== undefined) throw brokerError(fail.revoke);
    },
    deleteResource: async () => {
      calls.push('deleteResource');
      if (fail.deleteResource !== undefined) throw brokerError(fail.deleteResource);
    },
  };
  return { calls, broker: broker as never };
}

async function withdrawError(broker: never): Promise<unknown> {
  const release = new NodeSecretRelease({ broker, nodeRecord: async () => ({}) as never });
  return release.withdraw(NODE as never, 'deploy failed attestation').then(
    () => undefined,
    (error: unknown) => error,
  );
}

/** `NodeSecretRelease.withdraw` against a stub broker: the revocation first, each step tried whatever the other did. */
describe('NodeSecretRelease.withdraw', function () {
  it('revokes first, then deletes the secret', async function () {
    const { calls, broker } = stubBroker({});
    expect(await withdrawError(broker)).to.equal(undefined);
    expect(calls).to.deep.equal([`revoke ${AGENT}`, 'deleteResource']);
  });

  it('a 500 on the secret delete still revokes the node, and the delete failure is thrown', async function () {
    const { calls, broker } = stubBroker({ deleteResource: 500 });
    const error = await withdrawError(broker);
    expect(calls).to.deep.equal([`revoke ${AGENT}`, 'deleteResource']);
    expect(error).to.be.instanceOf(KbsRefusedError);
    expect((error as KbsRefusedError).remoteHttpStatus).to.equal(500);
  });

  it('a failed revoke still deletes the secret; both failures are thrown together', async function () {
    const { calls, broker } = stubBroker({ revoke: 503, deleteResource: 500 });
    const error = await withdrawError(broker);
    expect(calls).to.deep.equal([`revoke ${AGENT}`, 'deleteResource']);
    expect(error).to.be.instanceOf(AggregateError);
    expect((error as AggregateError).errors.map((e: KbsRefusedError) => e.remoteHttpStatus)).to.deep.equal([503, 500]);
    expect((error as Error).message).to.match(/^node n1: withdrawing failed: .*503.*; .*500/);
  });

  it('a secret already gone (404) is not a failure', async function () {
    const { calls, broker } = stubBroker({ deleteResource: 404 });
    expect(await withdrawError(broker)).to.equal(undefined);
    expect(calls).to.deep.equal([`revoke ${AGENT}`, 'deleteResource']);
  });
});
