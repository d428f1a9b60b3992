import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { IronlimeError } from '../../interfaces/errors.js';
import { okEnvelopeText } from '../../lib/http/envelope.js';
import { createRefstate } from '../../lib/mb/create-refstate.js';
import { parseEventLog } from '../../lib/mb/parse-event-log.js';
import { checkEvidence, resultsJson, type EvidenceAnswer, type EvidenceCheckOptions } from '../../lib/verifier/evidence-check.js';
import { EvidenceInputsCache } from '../../lib/verifier/evidence-inputs-cache.js';
import { EvidenceWorkerPool } from '../../lib/verifier/evidence-worker-pool.js';
import { workerExecArgv } from '../../lib/http/worker-thread-options.js';
import type { TpmEvidenceData } from '../../lib/verifier/verify-route-dtos.js';
import { maskOf } from '../attestation/engine-fixtures.js';
import { FakeAgent } from '../attestation/fake-agent.js';
import { evidenceData as evidence } from './helpers/evidence-data.js';
import { vectorPath } from '../helpers/paths.js';

const run = promisify(execFile);
const OPTIONS: EvidenceCheckOptions = { measuredBootPolicy: 'example', failOnTomtou: false };
const BOOT_LOG = new Uint8Array(readFileSync(vectorPath('rust-keylime', 'uefi_log.bin')));
const BOOT_PCRS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 14];

function runtimePolicy(digests: Record<string, string[]>): string {
  return JSON.stringify({ meta: { version: 1, generator: 3 }, release: 0, digests, excludes: [], keyrings: {}, ima: { ignored_keyrings: [], log_hash_alg: 'sha1', dm_policy: null }, 'ima-buf': {}, 'verification-keys': '' });
}


/** A request body with `data`, as the route's pool receives it. */
function bodyOf(data: TpmEvidenceData | Record<string, unknown>): string {
  return JSON.stringify({ type: 'tpm', data });
}

function results(answer: EvidenceAnswer): { valid: boolean; failures: { type: string }[] } {
  expect(answer.kind).to.equal('results');
  return JSON.parse(answer.kind === 'results' ? answer.json : '{}') as { valid: boolean; failures: { type: string }[] };
}

describe('POST /verify/evidence worker pool: the same answers as in process, an error when a thread dies', function () {
  this.timeout(30_000);
  const pools: EvidenceWorkerPool[] = [];
  const poolOf = (size: number, script?: URL, jobTimeoutMs?: number): EvidenceWorkerPool => {
    const pool = new EvidenceWorkerPool(size, script, jobTimeoutMs);
    pools.push(pool);
    return pool;
  };

  after(async function () {
    await Promise.all(pools.map((p) => p.close()));
  });

  it('answers pass, fail and refused evidence exactly as the in-process check does', async function () {
    const agent = new FakeAgent({ bootLog: BOOT_LOG });
    agent.measure('/usr/bin/bash', 'bash');
    const digests: Record<string, string[]> = {};
    for (const line of agent.imaLines) {
      const [, , , digest = '', ...name] = line.split(' ');
      (digests[name.join(' ')] ??= []).push(digest.replace(/^sha256:/, ''));
    }
    const refstate = JSON.stringify(createRefstate(parseEventLog(BOOT_LOG), { withoutSecureBoot: true }));
    const cases: TpmEvidenceData[] = [
      evidence(agent, 'poolNonce00000000001', maskOf([]), { runtime_policy: runtimePolicy(digests) }),
      evidence(agent, 'poolNonce00000000002', maskOf([]), { runtime_policy: runtimePolicy({ ...digests, '/usr/bin/bash': ['0'.repeat(64)] }) }),
      evidence(agent, 'poolNonce00000000003', maskOf(BOOT_PCRS), { mb_policy: refstate }),
      evidence(agent, 'poolNonce00000000004', maskOf(BOOT_PCRS), { mb_policy: refstate, nonce: 'anotherNonce00000004' }),
      evidence(agent, 'poolNonce00000000005', maskOf([]), { hash_alg: 'md5' }),
      evidence(agent, 'poolNonce00000000006', maskOf([]), { runtime_policy: '{"meta": 7}' }),
    ];
    const pool = poolOf(2);
    const inProcess = new EvidenceInputsCache();
    const bodies = [...cases.map(bodyOf), '{"type": "tpm", "data": ', `{"type": "tpm", "data": ${JSON.stringify(cases[0])}, "more": 1}`, ''];
    const pooled = await Promise.all(bodies.map((body) => pool.check(body, OPTIONS)));
    const local = bodies.map((body) => checkEvidence(body, inProcess, OPTIONS));
    expect(pooled).to.deep.equal(local);
    expect(local.map((a) => (a.kind === 'results' ? results(a).valid : a.kind))).to.deep.equal([true, false, true, false, 'refused', 'refused', 'refused', 'refused', 'refused']);
    expect(local.slice(6).map((a) => (a.kind === 'refused' ? a.message : a.kind))).to.deep.equal(['body: must be JSON', 'body.more: should not exist', 'body: must be a JSON object']);
    expect(results(local[3] as EvidenceAnswer).failures.map((f) => f.type)).to.include('qoute_validation.quote_validation');
  });

  for (const [nonce, how] of [['exitNow', 'exits'], ['throwNow', 'throws']] as const) {
    it(`a thread that ${how} answers its job with an error (a 500, not a verdict) and is replaced`, async function () {
      const agent = new FakeAgent();
      const pool = poolOf(1, new URL('./fixtures/crashing-evidence-worker.js', import.meta.url));
      const crash = evidence(agent, 'poolNonce00000000010', maskOf([]));
      const crashed = await pool.check(bodyOf({ ...crash, nonce: nonce }), OPTIONS);
      expect(crashed.kind).to.equal('internal');
      expect(() => resultsJson(crashed)).to.throw(Error).that.is.not.instanceOf(IronlimeError);
      const after = await pool.check(bodyOf(evidence(agent, 'poolNonce00000000011', maskOf([]))), OPTIONS);
      expect(results(after).valid).to.equal(true);
    });
  }

  it('answers every pending job of a thread that dies, and nothing after close', async function () {
    const agent = new FakeAgent();
    const pool = poolOf(1, new URL('./fixtures/crashing-evidence-worker.js', import.meta.url));
    const good = bodyOf(evidence(agent, 'poolNonce00000000020', maskOf([])));
    const answers = await Promise.all([pool.check(bodyOf({ ...evidence(agent, 'poolNonce00000000021', maskOf([])), nonce: 'exitNow' }), OPTIONS), pool.check(good, OPTIONS), pool.check(good, OPTIONS)]);
    expect(answers.map((a) => a.kind)).to.deep.equal(['internal', 'internal', 'internal']);
    expect(results(await pool.check(good, OPTIONS)).valid).to.equal(true);
    await pool.close();
    expect((await pool.check(good, OPTIONS)).kind).to.equal('internal');
  });

  it('a thread that never answers is ended after the job time bound: its jobs answer an error, and a new thread serves', async function () {
    const agent = new FakeAgent();
    const pool = poolOf(1, new URL('./fixtures/crashing-evidence-worker.js', import.meta.url), 500);
    const good = bodyOf(evidence(agent, 'poolNonce00000000030', maskOf([])));
    const started = Date.now();
    const answers = await Promise.all([pool.check(bodyOf({ ...evidence(agent, 'poolNonce00000000031', maskOf([])), nonce: 'hangNow' }), OPTIONS), pool.check(good, OPTIONS)]);
    expect(answers.map((a) => a.kind)).to.deep.equal(['internal', 'internal']);
    expect(answers[0]).to.have.property('message').that.includes('took longer than 500 ms');
    expect(Date.now() - started).to.be.below(10_000);
    expect(results(await pool.check(good, OPTIONS)).valid).to.equal(true);
  });

  it('the envelope text of results is what the route sent before ({code, status, results})', function () {
    const text = okEnvelopeText(resultsJson({ kind: 'results', json: '{"valid":true,"claims":{},"failures":[]}' }));
    expect(JSON.parse(text)).to.deep.equal({ code: 200, status: 'Success', results: { valid: true, claims: {}, failures: [] } });
    expect(() => resultsJson({ kind: 'refused', code: 'ERR_POLICY_INVALID', message: 'runtime policy: meta: bad' })).to.throw(IronlimeError, 'runtime policy: meta: bad');
  });
});

describe('EvidenceInputsCache: keyed by the whole text, bounded', function () {
  it('a policy differing only in a lone surrogate where another has U+FFFD is derived on its own', function () {
    const cache = new EvidenceInputsCache();
    const replacement = cache.runtimePolicy(runtimePolicy({ '/usr/bin/\uFFFD': ['a'.repeat(64)] }));
    const lone = cache.runtimePolicy(runtimePolicy({ '/usr/bin/\uD800': ['a'.repeat(64)] }));
    expect(lone).to.not.equal(replacement);
    expect([...lone.digests.keys()]).to.deep.equal(['/usr/bin/\uD800']);
    expect(cache.runtimePolicy(runtimePolicy({ '/usr/bin/\uFFFD': ['a'.repeat(64)] }))).to.equal(replacement);
  });

  it('keys a text over 16,383 characters by its SHA-256 of UTF-16 units: kept, and a lone surrogate is not U+FFFD', function () {
    const cache = new EvidenceInputsCache();
    const padding = '/usr/lib/'.padEnd(17_000, 'x');
    const replacementText = runtimePolicy({ [`${padding}\uFFFD`]: ['a'.repeat(64)] });
    // JSON.stringify escapes a lone surrogate; put it back raw, as a client may send it.
    const loneText = runtimePolicy({ [`${padding}\uD800`]: ['a'.repeat(64)] }).replace('\\ud800', '\uD800');
    expect(loneText.length).to.equal(replacementText.length).and.be.greaterThan(16_383);
    expect(Buffer.from(loneText).equals(Buffer.from(replacementText))).to.equal(true);
    const replacement = cache.runtimePolicy(replacementText);
    const lone = cache.runtimePolicy(loneText);
    expect(lone).to.not.equal(replacement);
    expect(cache.runtimePolicy(replacementText)).to.equal(replacement);
    expect(cache.runtimePolicy(loneText)).to.equal(lone);
  });

  it('drops the least recently used of short and long texts alike', function () {
    const cache = new EvidenceInputsCache();
    const long = runtimePolicy({ ['/usr/lib/'.padEnd(17_000, 'x')]: ['a'.repeat(64)] });
    const shortTexts = Array.from({ length: 256 }, (_, i) => runtimePolicy({ [`/usr/bin/p${i}`]: ['a'.repeat(64)] }));
    const longPolicy = cache.runtimePolicy(long);
    const firstShort = cache.runtimePolicy(shortTexts[0] as string);
    for (const text of shortTexts.slice(1, 255)) {
      cache.runtimePolicy(text);
    }
    expect(cache.runtimePolicy(long)).to.equal(longPolicy);
    cache.runtimePolicy(shortTexts[255] as string);
    expect(cache.runtimePolicy(long)).to.equal(longPolicy);
    expect(cache.runtimePolicy(shortTexts[0] as string)).to.not.equal(firstShort);
  });

  it('keeps at most 256 texts per kind: the least recently used is derived again', function () {
    const cache = new EvidenceInputsCache();
    const texts = Array.from({ length: 257 }, (_, i) => runtimePolicy({ [`/usr/bin/p${i}`]: ['a'.repeat(64)] }));
    const first = cache.runtimePolicy(texts[0] as string);
    const second = cache.runtimePolicy(texts[1] as string);
    cache.runtimePolicy(texts[0] as string);
    for (const text of texts.slice(2)) {
      cache.runtimePolicy(text);
    }
    expect(cache.runtimePolicy(texts[0] as string)).to.equal(first);
    expect(cache.runtimePolicy(texts[1] as string)).to.not.equal(second);
  });

  it('hands out one measured-boot memo until 16 Mi characters of logs went through it, and none for a log over 4 Mi', function () {
    const cache = new EvidenceInputsCache();
    const memo = cache.measuredBootMemo(1024 * 1024);
    for (let i = 0; i < 14; i += 1) {
      expect(cache.measuredBootMemo(1024 * 1024)).to.equal(memo);
    }
    expect(cache.measuredBootMemo(4 * 1024 * 1024 + 1)).to.equal(undefined);
    expect(cache.measuredBootMemo(1024 * 1024)).to.equal(memo);
    expect(cache.measuredBootMemo(1)).to.not.equal(memo);
  });
});

describe('EvidenceWorkerPool threads in a process started with Node options', function () {
  this.timeout(30_000);
  const poolModule = new URL('../../lib/verifier/evidence-worker-pool.js', import.meta.url).href;
  /** A module that asks a pool of one thread about a malformed quote and prints the failure's type. */
  const code = `const { EvidenceWorkerPool } = await import(${JSON.stringify(poolModule)});
const pool = new EvidenceWorkerPool(1);
const body = JSON.stringify({ type: 'tpm', data: { quote: 'rAAAA', nonce: 'n', hash_alg: 'sha256', tpm_ak: 'AAAA' } });
const answer = await pool.check(body, { measuredBootPolicy: 'example', failOnTomtou: false });
process.stdout.write(answer.kind === 'results' ? JSON.parse(answer.json).failures[0].type : answer.message);
await pool.close();`;

  it('with -e (how the CLI tests start ironlime): drop the options about the main script, which a thread refuses, and keep the others', function () {
    expect(workerExecArgv(['--input-type=module', '-e', 'code', '--max-old-space-size=512', '--input-type', 'module', '--print', 'x', '--enable-source-maps'])).to.deep.equal([
      '--max-old-space-size=512',
      '--enable-source-maps',
    ]);
  });

  it('without -e: inherit every option as parsed (a V8 option given to a thread as a list is refused)', function () {
    expect(workerExecArgv(['--max-old-space-size=512', '--enable-source-maps'])).to.equal(undefined);
  });

  it('answer evidence in a process started with -e', async function () {
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', code]);
    expect(stdout).to.equal('qoute_validation.quote_validation');
  });

  it('answer evidence in a process started with V8 options (--max-old-space-size, --max-semi-space-size)', async function () {
    const dir = mkdtempSync(path.join(tmpdir(), 'ironlime-evidence-pool-'));
    try {
      const script = path.join(dir, 'ask-pool.mjs');
      writeFileSync(script, code);
      const { stdout } = await run(process.execPath, ['--max-old-space-size=512', '--max-semi-space-size=32', script]);
      expect(stdout).to.equal('qoute_validation.quote_validation');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
