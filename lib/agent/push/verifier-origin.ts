import { isIP } from 'node:net';
import { InvalidConfig } from '../../../interfaces/errors.js';

const FIELD = 'agent.verifierUrl';

/**
 * The origin the push agent attests to, from `--verifier`: `https://HOST:PORT`, or plain http to a
 * loopback address (in-process tests) — anywhere else plain http would carry the bearer token and the
 * evidence across the network unencrypted. No credentials, path, query or fragment: the agent builds
 * every path itself. @throws InvalidConfig
 */
export function pushVerifierOrigin(verifierUrl: string): string {
  let url: URL;
  try {
    url = new URL(verifierUrl);
  } catch {
    throw new InvalidConfig(FIELD, 'must be https://HOST:PORT');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new InvalidConfig(FIELD, 'must be https://HOST:PORT');
  }
  if (url.username !== '' || url.password !== '' || url.pathname !== '/' || url.search !== '' || url.hash !== '' || verifierUrl.trim().endsWith('?') || verifierUrl.trim().endsWith('#')) {
    throw new InvalidConfig(FIELD, 'must be https://HOST:PORT, without credentials, path, query or fragment');
  }
  if (url.protocol === 'http:' && !isLoopback(url.hostname)) {
    throw new InvalidConfig(FIELD, 'plain http leaves the host: the bearer token and the evidence would cross the network unencrypted; use https');
  }
  return url.origin;
}

function isLoopback(hostname: string): boolean {
  const host = hostname.replace(/^\[(.*)\]$/, '$1');
  if (host === 'localhost' || host === '::1') return true;
  return isIP(host) === 4 && host.startsWith('127.');
}
