import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { createRefstate } from '../../lib/mb/create-refstate.js';
import { parseEventLog } from '../../lib/mb/parse-event-log.js';
import { EVIDENCE_MAX_JSON_VALUES } from '../../lib/verifier/evidence-check.js';
import { maskOf } from '../attestation/engine-fixtures.js';
import { FakeAgent } from '../attestation/fake-agent.js';
import { vectorPath } from '../helpers/paths.js';
import { verifierPerSuite } from '../helpers/verifier-per-suite.js';
import { evidenceData as evidence, postEvidence } from './helpers/evidence-data.js';

interface EvidenceReply {
  readonly status: number;
  readonly body: { code: number; status: string; results: { valid?: boolean; failures?: { type: string; context: Record<string, unknown> }[] } };
}

const BOOT_LOG = new Uint8Array(readFileSync(vectorPath('rust-keylime', 'uefi_log.bin')));
const BOOT_PCRS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 14];
/** `/` + 28 × `a` + `!`: with `(a+)+$` a backtracking engine takes seconds (40 characters: hours). */
const EVIL_PATH = `/${'a'.repeat(28)}!`;

function runtimePolicy(agent: FakeAgent, extra: Record<string, unknown> = {}): string {
  // Without a prototype, so that a path such as `constructor` or `__proto__` is a key like any other.
  const digests: Record<string, string[]> = Object.create(null) as Record<string, string[]>;
  for (const line of agent.imaLines) {
    const [, , , digest = '', ...name] = line.split(' ');
    (digests[name.join(' ')] ??= []).push(digest.replace(/^sha256:/, ''));
  }
  return JSON.stringify({
    meta: { version: 1, generator: 3 },
    release: 0,
    digests,
    excludes: [],
    keyrings: {},
    ima: { ignored_keyrings: [], log_hash_alg: 'sha1', dm_policy: null },
    'ima-buf': {},
    'verification-keys': '',
    ...extra,
  });
}

describe('POST /verify/evidence: hostile patterns and unchecked policies (issue 11 items 1, 2)', function () {
  const suite = verifierPerSuite('ironlime-evidence-route-', { inProcessForTests: true });

  async function post(data: object): Promise<EvidenceReply> {
    return (await postEvidence(suite.verifier, data)) as EvidenceReply;
  }

  it(`refuses a body of more than ${EVIDENCE_MAX_JSON_VALUES} JSON values (400) before it is parsed (hunt H5)`, async function () {
    const agent = new FakeAgent();
    agent.measure('/usr/bin/bash', 'bash');
    const reply = await post({ ...evidence(agent, 'valueBoundNonce00001', maskOf([])), extra: Array.from({ length: EVIDENCE_MAX_JSON_VALUES }, () => ({})) });
    expect(reply).to.deep.equal({ status: 400, body: { code: 400, status: `body: holds more than ${EVIDENCE_MAX_JSON_VALUES} JSON values`, results: {} } });
  });

  it('an exclude rule (a+)+$ against an IMA path of / + 28 a + ! is matched in linear time (not excluded, not in the policy)', async function () {
    const agent = new FakeAgent();
    agent.measure('/usr/bin/bash', 'bash');
    const policy = runtimePolicy(agent, { excludes: ['/(a+)+$'] });
    agent.measure(EVIL_PATH, 'x');
    const reply = await post(evidence(agent, 'redosNonce0000000001', maskOf([]), { runtime_policy: policy }));
    expect(reply.status).to.equal(200);
    expect(reply.body.results.valid).to.equal(false);
    expect(reply.body.results.failures?.map((f) => [f.type, f.context['path']])).to.deep.equal([['ima.validation.ima-ng.not_in_allowlist', EVIL_PATH]]);
  });

  it('an exclude rule RE2 cannot run (a back-reference) is refused as a bad policy, naming the feature (400)', async function () {
    const agent = new FakeAgent();
    agent.measure('/usr/bin/bash', 'bash');
    const reply = await post(evidence(agent, 'redosNonce0000000002', maskOf([]), { runtime_policy: runtimePolicy(agent, { excludes: ['/(a)\\1'] }) }));
    expect(reply.status).to.equal(400);
    expect(reply.body.status).to.include('excludes[0]').and.include('backreference');
  });

  it('excludes RE2 would take minutes to compile (3,000 × /[\\w]{1000}N, 75 KB) are refused as a bad policy (400) naming the rule', async function () {
    const agent = new FakeAgent();
    agent.measure('/usr/bin/bash', 'bash');
    const excludes = Array.from({ length: 3000 }, (_, i) => `/[\\w]{1000}${i}`);
    const reply = await post(evidence(agent, 'redosNonce0000000005', maskOf([]), { runtime_policy: runtimePolicy(agent, { excludes }) }));
    expect(reply.status).to.equal(400);
    expect(reply.body.status).to.include('excludes[0]').and.include('too costly');
  });

  /**
   * An agent whose list holds `paths` paths of `length` characters, and a policy allowing its files with
   * 225 excludes `[^X]*.{1000}b` (distinct X): inside the compile budget, seconds of matching per long path.
   */
  function costlyToMatch(paths: number, length: number): { agent: FakeAgent; policy: string } {
    const agent = new FakeAgent();
    agent.measure('/usr/bin/bash', 'bash');
    const chars = 'abcdefghijklmnopqrstuvwxyz0123456789';
    const excludes = Array.from({ length: 225 }, (_, i) => `[^${chars[i % chars.length] ?? 'a'}]*.{1000}b`);
    const policy = runtimePolicy(agent, { excludes });
    for (let p = 0; p < paths; p++) {
      agent.measure(`/${Array.from({ length }, (_, i) => chars[(i * 7 + p) % chars.length]).join('')}`, `x${p}`);
    }
    return { agent, policy };
  }

  it('excludes within the compile budget but too costly to match on this list (225 × [^X]*.{1000}b, 3,000-character paths) are refused (400) before the engine runs', async function () {
    this.timeout(20_000);
    const { agent, policy } = costlyToMatch(2, 3000);
    const started = Date.now();
    const reply = await post(evidence(agent, 'matchNonce0000000001', maskOf([]), { runtime_policy: policy }));
    expect(reply.status).to.equal(400);
    expect(reply.body.status).to.match(/excludes: too costly to evaluate for this request: .* \(0 ms spent in 0 runs; the next could take \d+ ms\)/);
    // Room for a CI host that stalls this process for ~3 s.
    expect(Date.now() - started).to.be.below(8000);
  });

  it('the same excludes on shorter paths run until the request\'s 2 s allowance would pass, then are refused (400)', async function () {
    this.timeout(20_000);
    const { agent, policy } = costlyToMatch(8, 700);
    const started = Date.now();
    const reply = await post(evidence(agent, 'matchNonce0000000002', maskOf([]), { runtime_policy: policy }));
    expect(reply.status).to.equal(400);
    const runs = Number(/spent in (\d+) runs/.exec(reply.body.status)?.[1]);
    expect(runs).to.be.within(0, 3);
    // The 2 s allowance, with room for a CI host that stalls this process for ~3 s.
    expect(Date.now() - started).to.be.below(9000);
  });

  it('files named constructor, toString and __proto__ are checked as any other file (200, valid)', async function () {
    const agent = new FakeAgent();
    for (const name of ['constructor', 'toString', '__proto__']) {
      agent.measure(name, name);
    }
    const reply = await post(evidence(agent, 'protoNonce0000000001', maskOf([]), { runtime_policy: runtimePolicy(agent) }));
    expect(reply.status).to.equal(200);
    expect(reply.body.results.failures).to.deep.equal([]);
    expect(reply.body.results.valid).to.equal(true);
  });

  it('a body over 1 MiB, decoded in its worker thread, is judged as UTF-8: files with non-ASCII names pass, one outside the policy is named', async function () {
    this.timeout(120_000);
    const agent = new FakeAgent();
    for (let n = 0; n < 6_000; n += 1) agent.measure(`/usr/lib/modules/\u00fcn\u00efc\u00f6de-\u2713-${n}-${'x'.repeat(40)}.ko`, `module ${n}`);
    const policy = runtimePolicy(agent);
    const passing = evidence(agent, 'bigUtf8Nonce00000001', maskOf([]), { runtime_policy: policy });
    expect(Buffer.byteLength(JSON.stringify({ type: 'tpm', data: passing }))).to.be.above(1024 * 1024);
    const reply = await post(passing);
    expect([reply.status, reply.body.results.failures, reply.body.results.valid]).to.deep.equal([200, [], true]);
    agent.measure('/usr/bin/\u00e9trang\u00e8re', 'not in the policy');
    const failing = await post(evidence(agent, 'bigUtf8Nonce00000002', maskOf([]), { runtime_policy: policy }));
    expect(failing.body.results.valid).to.equal(false);
    expect(JSON.stringify(failing.body.results.failures)).to.include('/usr/bin/\u00e9trang\u00e8re');
  });

  it('a refstate kernel_cmdline regex of the same shape is matched in linear time', async function () {
    const agent = new FakeAgent({ bootLog: BOOT_LOG });
    const refstate = createRefstate(parseEventLog(BOOT_LOG), { withoutSecureBoot: true });
    const [kernel] = refstate.kernels;
    const evil = { ...refstate, kernels: [{ ...kernel, kernel_cmdline: '(.*)(.*)(.*)(.*)(a+)+$' }] };
    const mask = maskOf(BOOT_PCRS);
    const reply = await post(evidence(agent, 'redosNonce0000000003', mask, { mb_policy: JSON.stringify(evil), tpm_policy: JSON.stringify({ mask: `0x${mask.toString(16)}` }) }));
    expect(reply.status).to.equal(200);
    expect(reply.body.results.valid).to.equal(false);
    expect(reply.body.results.failures?.map((f) => f.type)).to.include('measured_boot.policy_example');
    const good = await post(evidence(agent, 'redosNonce0000000004', mask, { mb_policy: JSON.stringify(refstate) }));
    expect(good.body.results.failures).to.deep.equal([]);
    expect(good.body.results.valid).to.equal(true);
  });

  it('a runtime policy with a quote that does not cover PCR 10 is refused with the reason, whatever the generator', async function () {
    const agent = new FakeAgent();
    agent.measure('/usr/bin/bash', 'bash');
    for (const generator of [0, 1, 3]) {
      const reply = await post(evidence(agent, `pcr10Nonce000000000${generator}`, 1 << 15, { runtime_policy: runtimePolicy(agent, { meta: { version: 1, generator } }) }));
      expect(reply.status).to.equal(200);
      expect(reply.body.results.valid, `generator ${generator}`).to.equal(false);
      const types = reply.body.results.failures?.map((f) => f.type);
      expect(types, `generator ${generator}`).to.satisfy((t: string[]) => t.includes('pcr_validation.missing_pcr_10') || t.includes('pcr_validation.missing_pcrs'));
    }
    const covered = await post(evidence(agent, 'pcr10Nonce0000000009', maskOf([]), { runtime_policy: runtimePolicy(agent, { meta: { version: 1, generator: 0 } }) }));
    expect(covered.body.results.failures).to.deep.equal([]);
    expect(covered.body.results.valid).to.equal(true);
    const noPolicy = await post(evidence(agent, 'pcr10Nonce0000000010', 1 << 15, {}));
    expect(noPolicy.body.results.valid).to.equal(true);
  });

  it('keeps what it derives from a policy text by that text: the same text gives the same answer, another text its own, a bad text fails every time', async function () {
    const agent = new FakeAgent();
    agent.measure('/usr/bin/bash', 'bash');
    const accepting = runtimePolicy(agent);
    const refusing = runtimePolicy(agent, { digests: { '/usr/bin/bash': ['0'.repeat(64)] } });
    const answers: (boolean | undefined)[] = [];
    for (const [i, policy] of [accepting, refusing, accepting, refusing].entries()) {
      answers.push((await post(evidence(agent, `cacheNonce000000000${i}`, maskOf([]), { runtime_policy: policy }))).body.results.valid);
    }
    expect(answers).to.deep.equal([true, false, true, false]);
    for (const i of [1, 2]) {
      const bad = await post(evidence(agent, `cacheNonce00000000b${i}`, maskOf([]), { runtime_policy: runtimePolicy(agent, { excludes: ['(?<=x)'] }) }));
      expect(bad.status).to.equal(400);
      expect(bad.body.status).to.include('lookbehind');
    }
  });
});
