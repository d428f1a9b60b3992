import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FakeKeylime } from './fake-keylime.js';

/** What a driver test file shares: the fake services, their temporary directory, and a driver_info naming them. */
export interface FakeKeylimeFixture {
  readonly fake: FakeKeylime;
  dir: string;
  /** Filled afresh before each test (the same object, so a file may keep a reference to it). */
  readonly info: Record<string, unknown>;
}

/**
 * Registers the mocha hooks of a driver test file against a FakeKeylime: the allowlist and placeholder
 * client certificate/key files in a temporary directory (the fake speaks plain http, so they are never
 * read), and before each test the fake's recorded requests and routes cleared and `info` rebuilt.
 */
export function useFakeKeylime(dirPrefix: string, allowlist: string, agentUuid: string): FakeKeylimeFixture {
  const fixture: FakeKeylimeFixture = { fake: new FakeKeylime(), dir: '', info: {} };

  before(async function () {
    fixture.dir = mkdtempSync(path.join(tmpdir(), dirPrefix));
    writeFileSync(path.join(fixture.dir, 'allowlist.txt'), allowlist);
    writeFileSync(path.join(fixture.dir, 'client.crt'), '-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n');
    writeFileSync(path.join(fixture.dir, 'client.key'), '-----BEGIN PRIVATE KEY-----\nMA==\n-----END PRIVATE KEY-----\n', { mode: 0o600 });
    await fixture.fake.start();
  });

  after(async function () {
    await fixture.fake.stop();
    rmSync(fixture.dir, { recursive: true, force: true });
  });

  beforeEach(function () {
    fixture.fake.requests.length = 0;
    fixture.fake.routes.clear();
    for (const key of Object.keys(fixture.info)) delete fixture.info[key];
    Object.assign(fixture.info, {
      keylime_allowlist: path.join(fixture.dir, 'allowlist.txt'),
      keylime_allowlist_checksum: createHash('sha256').update(allowlist).digest('hex'),
      keylime_agent_uuid: agentUuid,
      keylime_verifier_url: fixture.fake.url,
      keylime_registrar_url: `${fixture.fake.url}/registrar`,
      keylime_tls_cert: path.join(fixture.dir, 'client.crt'),
      keylime_tls_key: path.join(fixture.dir, 'client.key'),
    });
  });

  return fixture;
}
