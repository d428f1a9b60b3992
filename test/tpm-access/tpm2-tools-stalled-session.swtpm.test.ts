import { execFile } from 'node:child_process';
import { connect, createServer, type Server, type Socket } from 'node:net';
import path from 'node:path';
import { expect } from 'chai';
import { reachesTpmDirectly } from '../../lib/tpm-access/tpm2-tools/tpm-objects.js';
import { openTpm2ToolsTpm, type Tpm2ToolsTpm } from '../../lib/tpm-access/tpm2-tools/tpm-adapter.js';
import type { AkInfo, EkInfo } from '../../lib/tpm-access/tpm-port.js';
import { makeCredential } from '../../lib/tpm/make-credential.js';
import { verifyQuote } from '../../lib/tpm/verify-quote.js';
import { listHandles, runTool, startTestSwtpm, type SwtpmFixture } from './tpm-test-helpers.js';

/** TPM_CC_StartAuthSession (Part 2 §6.5.2). */
const CC_START_AUTH_SESSION = Buffer.from([0x00, 0x00, 0x01, 0x76]);

/**
 * A TCP relay in front of swtpm's server and control ports. While `stall` is set, a connection that
 * sends TPM2_StartAuthSession gets it delivered to the TPM, but never sees the answer: a TPM (or a
 * link) that went slow right then. The tool is killed at its timeout; the session it created stays.
 */
class StallingRelay {
  stall = false;
  private readonly servers: Server[] = [];
  private readonly sockets = new Set<Socket>();
  port = 0;

  async start(targetPort: number): Promise<void> {
    for (;;) {
      const first = await this.listen(0, targetPort);
      const second = await this.listen(first + 1, targetPort + 1).catch(() => undefined);
      if (second !== undefined) {
        this.port = first;
        return;
      }
      await this.close();
    }
  }

  private listen(port: number, target: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const server = createServer((client) => {
        const upstream = connect({ host: '127.0.0.1', port: target });
        this.sockets.add(client).add(upstream);
        let mute = false;
        client.on('data', (chunk: Buffer) => {
          const at = chunk.indexOf(CC_START_AUTH_SESSION);
          if (this.stall && at >= 6 && chunk[at - 6] === 0x80) {
            mute = true;
          }
          upstream.write(chunk);
        });
        upstream.on('data', (chunk: Buffer) => {
          if (!mute) client.write(chunk);
        });
        const end = (): void => {
          client.destroy();
          upstream.destroy();
        };
        client.on('close', end).on('error', end);
        upstream.on('close', end).on('error', end);
      });
      server.once('error', reject);
      server.listen({ host: '127.0.0.1', port, exclusive: true }, () => {
        this.servers.push(server);
        resolve((server.address() as { port: number }).port);
      });
    });
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await Promise.all(this.servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
  }
}

/** Timeout of the adapter behind the relay: it only runs quick tools (its AK is made by the direct one). */
const STALLED_TIMEOUT_MS = 2_000;

/** swtpm keeps 3 loaded sessions; a fourth StartAuthSession gets TPM_RC_SESSION_MEMORY. */
const SESSION_SLOTS = 3;

describe('tpm2-tools adapter: sessions left by tools killed at their timeout (real swtpm)', function () {
  this.timeout(180_000);
  let fixture: SwtpmFixture;
  let relay: StallingRelay;
  /** Straight to swtpm, default timeout: makes the keys, and later meets a TPM full of sessions. */
  let tpm: Tpm2ToolsTpm;
  /** Behind the relay, whose TPM goes quiet on StartAuthSession while `relay.stall` is set. */
  let stalling: Tpm2ToolsTpm;
  let ek: EkInfo;
  let ak: AkInfo;
  const secret = new Uint8Array(Buffer.from('0123456789abcdef0123456789abcdef'));

  before(async () => {
    fixture = await startTestSwtpm();
    relay = new StallingRelay();
    await relay.start(fixture.swtpm.port);
    tpm = await openTpm2ToolsTpm({ tcti: fixture.swtpm.tcti });
    ek = await tpm.ensureEk();
    ak = await tpm.ensureAk('sha256');
  });

  beforeEach(async () => {
    relay.stall = false;
    await fixture.swtpm.restart(); // a reboot drops whatever the test before left
    stalling = await openTpm2ToolsTpm({ tcti: `swtpm:host=127.0.0.1,port=${relay.port}`, timeoutMs: STALLED_TIMEOUT_MS });
    await stalling.ensureAk('sha256');
  });

  afterEach(async () => {
    await stalling?.close().catch(() => undefined);
  });

  after(async () => {
    await tpm?.close();
    await relay?.close();
    await fixture?.cleanup();
  });

  /** Runs `call` SESSION_SLOTS times while the TPM stalls, and checks that each was killed at its timeout. */
  async function stallThreeTimes(call: () => Promise<unknown>): Promise<void> {
    relay.stall = true;
    for (let i = 0; i < SESSION_SLOTS; i += 1) {
      const error = await call().then(() => undefined, (e: unknown) => e as Error);
      expect(error?.message).to.match(/no answer within 2000 ms/);
    }
    relay.stall = false;
  }

  /**
   * Fills the TPM's session slots the way another process would: tpm2_startauthsession through the
   * stalling relay, killed at a timeout, SESSION_SLOTS times. The TPM keeps each session.
   */
  async function abandonSessions(): Promise<void> {
    relay.stall = true;
    for (let i = 0; i < SESSION_SLOTS; i += 1) {
      await new Promise<void>((resolve) => {
        execFile(
          'tpm2_startauthsession',
          ['-S', path.join(fixture.dir, `abandoned-${i}.session`)],
          { timeout: 1_500, killSignal: 'SIGKILL', env: { ...process.env, TPM2TOOLS_TCTI: `swtpm:host=127.0.0.1,port=${relay.port}` } },
          () => resolve(),
        );
      });
    }
    relay.stall = false;
    expect(await listHandles(fixture.swtpm.tcti, 'handles-loaded-session')).to.have.length(SESSION_SLOTS);
  }

  async function quoteIsValid(adapter: Tpm2ToolsTpm): Promise<void> {
    const nonce = new Uint8Array([7, 7, 7]);
    const quote = await adapter.quote({ nonce, pcrs: [16], hashAlg: 'sha256' });
    const verdict = verifyQuote({ akPublic: ak.akPublic, ...quote, nonce, hashAlg: 'sha256' });
    expect(verdict.valid ? 'valid' : verdict.reason).to.equal('valid');
  }

  it('activates a credential once the TPM answers again after three activations were killed at their timeout', async () => {
    await stallThreeTimes(() => stalling.activateCredential(makeCredential({ ekPublic: ek.ekPublic, akName: ak.akName, secret })));
    expect(await stalling.activateCredential(makeCredential({ ekPublic: ek.ekPublic, akName: ak.akName, secret }))).to.deep.equal(secret);
    expect(await listHandles(fixture.swtpm.tcti, 'handles-loaded-session')).to.deep.equal([]);
  });

  it('quotes once the TPM answers again after three quotes were killed at their timeout, flushing their sessions first', async () => {
    await stallThreeTimes(() => stalling.quote({ nonce: new Uint8Array([1]), pcrs: [16], hashAlg: 'sha256' }));
    await stalling.readPcrs('sha256', [16]); // starts no session: only the flush a timeout asked for empties the slots
    expect(await listHandles(fixture.swtpm.tcti, 'handles-loaded-session')).to.deep.equal([]);
    await quoteIsValid(stalling);
  });

  it('a new adapter (a restarted agent) flushes the sessions another process left, before its first operation', async () => {
    await abandonSessions();
    const fresh = await openTpm2ToolsTpm({ tcti: fixture.swtpm.tcti });
    try {
      await fresh.readPcrs('sha256', [16]);
      expect(await listHandles(fixture.swtpm.tcti, 'handles-loaded-session')).to.deep.equal([]);
      await quoteIsValid(fresh);
    } finally {
      await fresh.close();
    }
  });

  it('leaves alone a session another process saved between two of its tools (its policy goes on), at the first operation and on TPM_RC_SESSION_MEMORY', async () => {
    // Another process (an agent activating its credential while `ima-append` runs) keeps its policy
    // session saved in a file between tpm2_startauthsession and tpm2_policysecret.
    const other = path.join(fixture.dir, 'other-process.session');
    expect((await runTool('tpm2_startauthsession', ['--policy-session', '-S', other], { tcti: fixture.swtpm.tcti })).status).to.equal(0);
    const fresh = await openTpm2ToolsTpm({ tcti: fixture.swtpm.tcti });
    try {
      await fresh.extendPcr(16, 'sha256', new Uint8Array(32)); // its first operation: flushes what a dead process left
      await abandonSessions();
      await quoteIsValid(fresh); // TPM_RC_SESSION_MEMORY: flushes, quotes again
      const policy = await runTool('tpm2_policysecret', ['-S', other, '-c', 'e'], { tcti: fixture.swtpm.tcti });
      expect(policy.stderr).to.equal('');
      expect(policy.status).to.equal(0);
    } finally {
      await fresh.close();
      await runTool('tpm2_flushcontext', [other], { tcti: fixture.swtpm.tcti });
    }
  });

  it('an adapter answered TPM_RC_SESSION_MEMORY flushes the sessions and runs the operation again', async () => {
    // `tpm` flushed at its first operation (in before()), so it meets the full TPM unwarned.
    await abandonSessions();
    await quoteIsValid(tpm);
    await abandonSessions();
    expect(await tpm.activateCredential(makeCredential({ ekPublic: ek.ekPublic, akName: ak.akName, secret }))).to.deep.equal(secret);
  });

  it('flushes sessions only on a TCTI without a resource manager', () => {
    for (const tcti of ['swtpm:host=127.0.0.1,port=2321', 'swtpm', 'mssim:host=localhost,port=2321', 'device:/dev/tpm0']) {
      expect(reachesTpmDirectly(tcti), tcti).to.equal(true);
    }
    for (const tcti of ['device:/dev/tpmrm0', 'device', 'tabrmd', 'tabrmd:bus_type=system', 'device:/dev/tpm0x']) {
      expect(reachesTpmDirectly(tcti), tcti).to.equal(false);
    }
  });
});
