import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { UnsecuredJWT } from 'jose';
import { canonicalJson } from '../../lib/bytes/canonical-json.js';
import type { EvidenceProvider } from '../../lib/kbs-client/evidence-provider.js';
import { KbsBadReplyError } from '../../lib/kbs-client/kbs-client-errors.js';
import { KbsClient } from '../../lib/kbs-client/kbs-client.js';
import { KbsHttp } from '../../lib/kbs-client/kbs-http.js';

const NONCE = Buffer.alloc(32, 7).toString('base64');

/** Keeps the report data it was asked to bind; its evidence is an empty object. */
class RecordingProvider implements EvidenceProvider {
  readonly reportData: Uint8Array[] = [];

  constructor(readonly tee: string) {}

  primaryEvidence(reportData: Uint8Array): Promise<Readonly<Record<string, unknown>>> {
    this.reportData.push(reportData);
    return Promise.resolve({});
  }
}

/**
 * A stand-in KBS: `/auth` answers a Challenge with the `extra-params` the test sets (absent when
 * undefined) and a cookie; `/attest` answers an unsigned JWT. Both keep the bodies they received.
 */
class StubKbs {
  extraParams: unknown;
  readonly received: Record<string, unknown[]> = { auth: [], attest: [] };
  private readonly server: Server = createServer((request, response) => {
    let text = '';
    request.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
    request.on('end', () => {
      const route = request.url === '/kbs/v0/auth' ? 'auth' : 'attest';
      this.received[route]?.push(JSON.parse(text) as unknown);
      if (route === 'auth') {
        response.setHeader('set-cookie', 'kbs-session-id=0123456789abcdef0123456789abcdef; Expires=Thu, 01 Jan 2099 00:00:00 GMT');
        response.end(JSON.stringify({ nonce: NONCE, ...(this.extraParams === undefined ? {} : { 'extra-params': this.extraParams }) }));
      } else {
        response.end(JSON.stringify({ token: new UnsecuredJWT({}).setExpirationTime('5m').encode() }));
      }
    });
  });

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

describe('kbs client: the Challenge\'s hash selection and the runtime-data binding', function () {
  let stub: StubKbs;
  let http: KbsHttp;

  before(async function () {
    stub = new StubKbs();
    http = new KbsHttp({ url: await stub.start() });
  });

  after(async function () {
    await http?.close();
    await stub?.close();
  });

  /** Runs one RCAR exchange against the stub answering `extraParams`; the provider and the Attestation sent. */
  async function exchange(extraParams: unknown, tee = 'tpm'): Promise<{ reportData: Uint8Array; attestation: Record<string, Record<string, unknown>> }> {
    stub.extraParams = extraParams;
    stub.received['attest'] = [];
    const provider = new RecordingProvider(tee);
    await new KbsClient({ broker: http, evidence: provider, mode: 'background' }).token();
    const attestation = stub.received['attest']?.[0] as Record<string, Record<string, unknown>>;
    return { reportData: provider.reportData[0] as Uint8Array, attestation };
  }

  /** H(JCS({"additional-evidence": "", nonce, tee-pubkey})) of what the client sent. */
  function digestOf(attestation: Record<string, Record<string, unknown>>, hash: string): Buffer {
    const runtimeData = attestation['runtime-data'] as { nonce: string; 'tee-pubkey': unknown };
    const bound = { 'additional-evidence': '', nonce: runtimeData.nonce, 'tee-pubkey': runtimeData['tee-pubkey'] };
    return createHash(hash).update(canonicalJson(bound), 'utf8').digest();
  }

  it('advertises sha256, sha384 and sha512, and sends additional_evidence "" beside the primary evidence', async function () {
    stub.received['auth'] = [];
    const { attestation } = await exchange({ 'selected-hash-algorithm': 'sha256' });
    expect(stub.received['auth']?.[0]).to.deep.include({ 'extra-params': { 'supported-hash-algorithms': ['sha256', 'sha384', 'sha512'] } });
    expect(attestation['tee-evidence']).to.deep.equal({ primary_evidence: {}, additional_evidence: '' });
  });

  it('with no selection (extra-params "", absent, or an object without it) binds SHA-384 cut to 32 bytes for tpm', async function () {
    for (const extraParams of ['', undefined, {}, null]) {
      const { reportData, attestation } = await exchange(extraParams);
      expect(Buffer.from(reportData), JSON.stringify(extraParams)).to.deep.equal(digestOf(attestation, 'sha384').subarray(0, 32));
    }
  });

  it('honours the selection in any letter case: sha256 whole, sha384 and sha512 cut to 32 bytes for tpm', async function () {
    for (const [selected, hash] of [['sha256', 'sha256'], ['SHA384', 'sha384'], ['Sha512', 'sha512']]) {
      const { reportData, attestation } = await exchange({ 'selected-hash-algorithm': selected });
      expect(Buffer.from(reportData), selected).to.deep.equal(digestOf(attestation, hash as string).subarray(0, 32));
    }
  });

  it('keeps the whole digest for a tee other than tpm', async function () {
    const { reportData, attestation } = await exchange({ 'selected-hash-algorithm': 'sha512' }, 'sample');
    expect(Buffer.from(reportData)).to.deep.equal(digestOf(attestation, 'sha512'));
  });

  it('refuses a selection it cannot honour (KbsBadReplyError) and attests nothing', async function () {
    for (const selected of ['md5', 'sha1', 5, null]) {
      stub.extraParams = { 'selected-hash-algorithm': selected };
      stub.received['attest'] = [];
      const provider = new RecordingProvider('tpm');
      const error = await new KbsClient({ broker: http, evidence: provider, mode: 'background' }).token().then(() => undefined, (e: unknown) => e);
      expect(error, JSON.stringify(selected)).to.be.instanceOf(KbsBadReplyError);
      expect([provider.reportData.length, stub.received['attest']?.length], JSON.stringify(selected)).to.deep.equal([0, 0]);
    }
  });
});
