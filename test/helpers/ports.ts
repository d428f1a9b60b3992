import { createServer, type AddressInfo } from 'node:net';

/** A TCP port on 127.0.0.1 nothing listens on (for a client to find closed, or a server to start on later): taken from the system, then released. */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
