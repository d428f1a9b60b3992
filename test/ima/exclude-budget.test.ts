import { expect } from 'chai';
import { RE2JS } from 're2js';
import { compileRuntimePolicy } from '../../lib/ima/compiled-policy.js';
import { compileExcludes } from '../../lib/ima/exclude-matcher.js';
import { RuntimePolicyError } from '../../lib/ima/internal/runtime-policy-error.js';
import { parseRuntimePolicy } from '../../lib/ima/runtime-policy.js';
import { compilePythonPatterns } from '../../lib/python-regex/linear-regex.js';
import { PythonRegexError } from '../../lib/python-regex/python-regex-error.js';
import { vectorText } from './ima-vectors.js';

/** Runs `run` and counts RE2's compilations during it (the expensive step the budget guards). */
function countingCompiles<T>(run: () => T): { result: T; compiles: number } {
  const original = RE2JS.compile;
  let compiles = 0;
  RE2JS.compile = ((...args: Parameters<typeof RE2JS.compile>) => {
    compiles += 1;
    return original.apply(RE2JS, args);
  }) as typeof RE2JS.compile;
  try {
    return { result: run(), compiles };
  } finally {
    RE2JS.compile = original;
  }
}

function policyWith(excludes: readonly string[]): string {
  return JSON.stringify({ meta: { version: 1 }, digests: { '/bin/sh': ['a'.repeat(64)] }, excludes });
}

describe('exclude rules: a compile budget checked before RE2 compiles anything (F4b H2)', () => {
  it('refuses a rule whose Unicode class repeats 1,000 times (/[\\w]{1000}), naming it, without compiling', () => {
    let error: unknown;
    const { compiles } = countingCompiles(() => {
      try {
        compileExcludes(['/tmp/', ...Array.from({ length: 3000 }, (_, i) => `/[\\w]{1000}${i}`)]);
      } catch (caught) {
        error = caught;
      }
    });
    expect(error).to.be.instanceOf(RuntimePolicyError);
    expect((error as Error).message).to.match(/^runtime policy: excludes\[1\]: "\/\[\\w\]\{1000\}0" is not a valid regular expression: too costly/);
    expect(compiles).to.equal(0);
  });

  it('refuses rules each under budget but too costly together, naming the rule that passes the total, without compiling', () => {
    const rules = Array.from({ length: 1000 }, (_, i) => `/[^/]{1000}${i}`);
    let error: unknown;
    const { compiles } = countingCompiles(() => {
      try {
        parseRuntimePolicy(policyWith(rules));
      } catch (caught) {
        error = caught;
      }
    });
    expect(error).to.be.instanceOf(RuntimePolicyError);
    const index = Number(/^runtime policy: excludes\[(\d+)\]: .* too costly together/.exec((error as Error).message)?.[1]);
    expect(index).to.be.above(100).and.below(1000);
    expect(() => compileExcludes(rules.slice(0, index))).not.to.throw();
    expect(compiles).to.equal(0);
  });

  it('the budgets hold whatever the caller: a refstate-style single pattern, or several together', () => {
    expect(() => compilePythonPatterns(['\\w{1000}'], 'full')).to.throw(PythonRegexError, /too costly/);
    expect(() => compilePythonPatterns(['[a-z]{1000}'], 'full')).not.to.throw();
  });

  it('compiles a policy\'s excludes once per load: parseRuntimePolicy then compileRuntimePolicy is one RE2 compile', () => {
    const rules = Array.from({ length: 50 }, (_, i) => `/opt/app${i}/.*\\.log$`);
    const { result: compiled, compiles } = countingCompiles(() => compileRuntimePolicy(parseRuntimePolicy(policyWith(rules))));
    expect(compiles).to.equal(1);
    expect(compiled.isExcluded('/opt/app7/x.log')).to.equal(true);
    expect(compiled.isExcluded('/opt/app7/x.txt')).to.equal(false);
  });

  it('recompiles rules changed after they were compiled (never a stale matcher)', () => {
    const policy = parseRuntimePolicy(policyWith(['/tmp/']));
    policy.excludes[0] = '/var/';
    const { isExcluded } = compileRuntimePolicy(policy);
    expect(isExcluded('/var/x')).to.equal(true);
    expect(isExcluded('/tmp/x')).to.equal(false);
  });

  it('names the rule RE2 refuses when the rules are compiled together', () => {
    expect(() => compileExcludes(['/a', '/b', '[z-a]', '/c'])).to.throw(
      RuntimePolicyError,
      /^runtime policy: excludes\[2\]: "\[z-a\]" is not a valid regular expression: not accepted by RE2/,
    );
  });

  it('accepts real-world excludes: Keylime\'s test policy, its documentation\'s list, common rules and 1,000 literal paths', () => {
    const vector = JSON.parse(vectorText('keylime', 'ima', 'verification', 'runtime_policy_test_with_excludes.json')) as { excludes: string[] };
    const documented = ['^/root/rpmbuild/.*$', '^/etc/.*$', '^/usr/.*$', 'boot_aggregate', '/tmp/.*', '/var/log/.*', '/var/lib/.*'];
    const common = ['/usr/lib/python3\\.\\d+/.*\\.pyc$', '/home/\\w+/\\.cache/.*', '/var/lib/containers/[0-9a-f]{64}/.*', '(?i)/opt/[^/]+/LOGS?/', '/proc/\\d+/.*'];
    const literal = Array.from({ length: 1000 }, (_, i) => `/usr/lib/x86_64-linux-gnu/package-${i}/lib/libsomething-${i}\\.so\\.1\\.2\\.3`);
    const excludes = [...vector.excludes, ...documented, ...common, ...literal];
    const { result: compiled, compiles } = countingCompiles(() => compileRuntimePolicy(parseRuntimePolicy(policyWith(excludes))));
    expect(compiles).to.equal(1);
    expect(compiled.isExcluded('/usr/bin/zless')).to.equal(true);
    expect(compiled.isExcluded('/usr/lib/x86_64-linux-gnu/package-999/lib/libsomething-999.so.1.2.3')).to.equal(true);
    expect(compiled.isExcluded('/home/alice/.cache/x')).to.equal(true);
    expect(compiled.isExcluded('/bin/sh')).to.equal(false);
  });
});
