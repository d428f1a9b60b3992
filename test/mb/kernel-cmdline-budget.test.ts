import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { RE2JS } from 're2js';
import { initialAgentState } from '../../lib/attestation/agent-state.js';
import { evaluateQuote } from '../../lib/attestation/internal/evaluate-quote.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import { createRefstate } from '../../lib/mb/create-refstate.js';
import { KERNEL_CMDLINES_BUDGET, MAX_REFSTATE_KERNELS } from '../../lib/mb/internal/kernel-cmdline-pattern.js';
import { MbRefstateError } from '../../lib/mb/mb-refstate.js';
import { parseEventLog } from '../../lib/mb/parse-event-log.js';
import { parseMbRefstate } from '../../lib/mb/parse-refstate.js';
import { maskOf, policiesFor } from '../attestation/engine-fixtures.js';
import { FakeAgent } from '../attestation/fake-agent.js';
import { vectorPath } from '../helpers/paths.js';

const BOOT_LOG = new Uint8Array(readFileSync(vectorPath('rust-keylime', 'uefi_log.bin')));
const BOOT_PCRS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 14];
/** 40 counted repeats: about 40,000 units, inside one pattern's budget, a few hundred ms of compiling. */
const COSTLY_CMDLINE = 'x{1,1000}'.repeat(40);

/** Runs `run` and counts RE2's compilations during it. */
function countingCompiles<T>(run: () => T): { result: T; compiles: number } {
  const original = RE2JS.compile;
  let compiles = 0;
  RE2JS.compile = ((...args: Parameters<typeof RE2JS.compile>) => {
    compiles += 1;
    return original(...args);
  }) as typeof RE2JS.compile;
  try {
    return { result: run(), compiles };
  } finally {
    RE2JS.compile = original;
  }
}

/**
 * A refstate's `kernel_cmdline` patterns are compiled when it is parsed and judged on every round:
 * their number and cost are bounded at parse (a refstate comes with `POST /verify/evidence`), and a
 * parsed refstate's patterns are not compiled again by the rounds that judge it.
 */
describe('refstate kernel_cmdline: bounded at parse, compiled once', () => {
  const made = createRefstate(parseEventLog(BOOT_LOG), { withoutSecureBoot: true });
  const [first] = made.kernels;
  if (first === undefined) throw new Error('the vector log makes no kernels entry');
  const withKernels = (kernels: readonly unknown[]): string => JSON.stringify({ ...made, kernels });

  it(`refuses more than ${MAX_REFSTATE_KERNELS} kernels entries, before compiling any`, () => {
    const { compiles } = countingCompiles(() =>
      expect(() => parseMbRefstate(withKernels(Array.from({ length: MAX_REFSTATE_KERNELS + 1 }, () => first)))).to.throw(MbRefstateError, /kernels has 65 entries, at most 64/),
    );
    expect(compiles).to.equal(0);
    expect(parseMbRefstate(withKernels(Array.from({ length: MAX_REFSTATE_KERNELS }, () => first))).kernels).to.have.length(MAX_REFSTATE_KERNELS);
  });

  it(`refuses patterns too costly together (over ${KERNEL_CMDLINES_BUDGET} units), naming the one that passes it, before compiling any`, () => {
    const costly = { ...first, kernel_cmdline: COSTLY_CMDLINE };
    const { compiles } = countingCompiles(() =>
      expect(() => parseMbRefstate(withKernels([costly, costly, costly]))).to.throw(MbRefstateError, /kernels\[2\]\.kernel_cmdline: .*too costly together/),
    );
    expect(compiles).to.equal(0);
    expect(parseMbRefstate(withKernels([costly, costly])).kernels).to.have.length(2);
  });

  it('a parsed refstate\'s patterns are compiled by the parser only: rounds that judge it compile none', () => {
    const { result: refstate, compiles: parsing } = countingCompiles(() => parseMbRefstate(withKernels([{ ...first, kernel_cmdline: '.*' }, first])));
    expect(parsing).to.equal(2);
    const agent = new FakeAgent({ bootLog: BOOT_LOG });
    agent.measure('/usr/bin/bash', 'bash');
    const policies = policiesFor(agent, { mbRefstate: refstate, tpmPolicy: { mask: `0x${maskOf(BOOT_PCRS).toString(16)}` } });
    const state = { ...initialAgentState(), operationalState: OperationalState.GET_QUOTE };
    const { result: failures, compiles } = countingCompiles(() =>
      [1, 2].flatMap((n) => {
        const nonce = `compileOnceNonce000${n}`;
        const reply = agent.reply({ nonce, mask: maskOf(BOOT_PCRS), imaEntry: 0 });
        return evaluateQuote({ state, policies, reply, nonce, now: 1_760_000_000 + n, options: {} }).failures.map((f) => f.eventId);
      }),
    );
    expect(failures).to.deep.equal([]);
    expect(compiles).to.equal(0);
  });
});
