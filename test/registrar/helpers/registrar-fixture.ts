import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { KeylimeHttpError } from '../../../lib/http/client-errors.js';
import type { Database } from '../../../lib/db/database-factory.js';
import { loadOrCreateClientTls, type ServiceTls } from '../../../lib/pki/service-tls.js';
import { RegistrarClient } from '../../../lib/registrar/registrar-client.js';
import { startRegistrar, type RegistrarConfigInput, type RunningRegistrar } from '../../../lib/registrar/registrar-server.js';
import { SoftwareEkCa } from '../../../lib/tpm-access/software/ek-certificate.js';
import type { DatabaseFixture } from '../../helpers/databases.js';
import { rejectionOf } from '../../helpers/rejection.js';

/**
 * One folder per test file: the registrar's data dir (its CA and TLS certificate are created once and
 * reused by every registrar started on it), a tenant client certificate from that CA, and a software
 * EK CA whose certificate sits in an `ekCaDirs` folder so software-TPM EK certificates are trusted.
 */
export interface RegistrarTestEnvironment {
  readonly root: string;
  readonly dataDir: string;
  readonly ekCaDir: string;
  readonly ekCa: SoftwareEkCa;
  readonly tenantTls: ServiceTls;
  dispose(): void;
}

export async function createRegistrarTestEnvironment(): Promise<RegistrarTestEnvironment> {
  const root = mkdtempSync(path.join(tmpdir(), 'ironlime-registrar-'));
  const dataDir = path.join(root, 'data');
  const ekCaDir = path.join(root, 'ek-ca');
  mkdirSync(ekCaDir);
  const ekCa = SoftwareEkCa.create({ commonName: 'registrar test EK CA' });
  writeFileSync(path.join(ekCaDir, 'test-ek-ca.pem'), ekCa.certificatePem);
  const tenantTls = await loadOrCreateClientTls({ dataDir, serviceName: 'tenant' });
  return {
    root,
    dataDir,
    ekCaDir,
    ekCa,
    tenantTls,
    dispose: () => rmSync(root, { recursive: true, force: true }),
  };
}

/** The registrar's refusal of `promise` (fails the test when it resolves or throws anything else). */
export function refusal(promise: Promise<unknown>): Promise<KeylimeHttpError> {
  return rejectionOf(promise, KeylimeHttpError);
}

/** A registrar on free loopback ports, trusting the environment's software EK CA. */
export function startTestRegistrar(
  env: RegistrarTestEnvironment,
  database: Database | undefined,
  overrides: Partial<RegistrarConfigInput> = {},
): Promise<RunningRegistrar> {
  return startRegistrar(
    { dataDir: env.dataDir, port: 0, tlsPort: 0, ekCaDirs: [env.ekCaDir], ...overrides },
    database === undefined ? {} : { database },
  );
}

/** An admin client (mTLS with the tenant certificate) for the registrar's TLS port. */
export function adminClient(env: RegistrarTestEnvironment, registrar: RunningRegistrar): RegistrarClient {
  return new RegistrarClient({
    baseUrl: registrar.tlsUrl,
    tls: { ca: registrar.caCert, cert: env.tenantTls.cert, key: env.tenantTls.key },
  });
}

export interface RawReply {
  readonly status: number;
  readonly body: { code: number; status: string; results: Record<string, unknown> };
}

export interface RawTls {
  readonly ca: string;
  readonly cert?: string;
  readonly key?: string;
}

/**
 * One request with exactly the bytes given (no client-side validation), over a real socket, for
 * hostile-input tests. `body` as a string is sent verbatim; an object is JSON-encoded.
 */
export function rawRequest(
  baseUrl: string,
  method: string,
  urlPath: string,
  body?: unknown,
  tls?: RawTls,
): Promise<RawReply> {
  const url = new URL(urlPath, baseUrl);
  const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
  const headers = payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) };
  return new Promise((resolve, reject) => {
    const callback = (res: import('node:http').IncomingMessage): void => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as RawReply['body'] });
        } catch (error) {
          reject(error instanceof Error ? error : new Error(String(error)));
        }
      });
      res.on('error', reject);
    };
    const req =
      url.protocol === 'https:'
        ? httpsRequest(url, { method, headers, ca: tls?.ca, cert: tls?.cert, key: tls?.key, agent: false }, callback)
        : httpRequest(url, { method, headers, agent: false }, callback);
    req.on('error', reject);
    req.end(payload);
  });
}

/** What `strictAndLenientRegistrars` holds while its suite runs. */
export interface StrictAndLenientRegistrars {
  /** A registrar with the default ek-check (`require`). */
  readonly strict: RunningRegistrar;
  /** A registrar with the lenient settings given, on the same database. */
  readonly lenient: RunningRegistrar;
  /** An admin client of `strict`. */
  readonly admin: RegistrarClient;
}

/**
 * Registers mocha hooks in the calling `describe`: a strict registrar and one with `lenientSettings`
 * (an ek-check of `warn` or `off`) on the fixture's database, and an admin client of the strict one,
 * started before the suite and closed after it. `env` is read in the hook, once the file's `before`
 * has made it.
 */
export function strictAndLenientRegistrars(
  env: () => RegistrarTestEnvironment,
  fixture: DatabaseFixture,
  lenientSettings: Partial<RegistrarConfigInput>,
): StrictAndLenientRegistrars {
  let strict: RunningRegistrar | undefined;
  let lenient: RunningRegistrar | undefined;
  let admin: RegistrarClient | undefined;
  before(async function () {
    strict = await startTestRegistrar(env(), fixture.database);
    lenient = await startTestRegistrar(env(), fixture.database, lenientSettings);
    admin = adminClient(env(), strict);
  });
  after(async function () {
    admin?.close();
    await strict?.close();
    await lenient?.close();
  });
  const started = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('the suite registrars are not started yet');
    return value;
  };
  return {
    get strict(): RunningRegistrar {
      return started(strict);
    },
    get lenient(): RunningRegistrar {
      return started(lenient);
    },
    get admin(): RegistrarClient {
      return started(admin);
    },
  };
}
