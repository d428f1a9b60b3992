import type { DriverInfo, Node } from '../../interfaces/node.js';

/** A node in cleaning with the keylime interface and `driverInfo`, as the driver tests use it. */
export function keylimeTestNode(driverInfo: DriverInfo): Node {
  return {
    uuid: '5a0e1d9c-0d7e-4a57-8f49-6c7a4e1f2b10',
    name: 'rack1-u1',
    provisionState: 'cleaning',
    attestationInterface: 'keylime',
    driverInfo,
    instanceInfo: {},
    lastAttestation: { status: null, reason: null, eventIds: [], at: null },
    createdAt: new Date(),
    updatedAt: new Date(),
  };
}

/** The error `promise` rejects with; fails the test when it resolves. */
export async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}
