import { expect } from 'chai';
import { compileRuntimePolicy } from '../../lib/ima/compiled-policy.js';
import { createRuntimePolicy } from '../../lib/ima/create-runtime-policy.js';
import { allowlistToRuntimePolicy, parseFlatAllowlist } from '../../lib/ima/internal/legacy-allowlist.js';
import { pythonJsonDumps } from '../../lib/ima/python-json.js';
import { parseRuntimePolicy } from '../../lib/ima/runtime-policy.js';

// File paths and keyring names that are also members of a plain JavaScript object.
const NAMES = ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf'];
const A = 'a'.repeat(40);
const B = 'b'.repeat(40);

describe('policy names that are Object members (constructor, __proto__, …) are names like any other', () => {
  it('a flat allowlist keeps them as paths and as keyring names', () => {
    const text = NAMES.map((name) => `${A} ${name}\n${B} ${name}\n${A} %keyring:${name}\n`).join('');
    const list = parseFlatAllowlist(text);
    expect(Object.keys(list.digests)).to.have.members(NAMES);
    expect(Object.keys(list.keyrings)).to.have.members(NAMES);
    for (const name of NAMES) {
      expect(Object.hasOwn(list.digests, name), name).to.equal(true);
      expect(list.digests[name]).to.deep.equal([A, B]);
      expect(list.keyrings[name]).to.deep.equal([A]);
    }
    const policy = allowlistToRuntimePolicy(text);
    expect(Object.keys(policy.digests)).to.have.members(NAMES);
  });

  it('createRuntimePolicy merges them from an allowlist into a base policy', () => {
    const base = JSON.stringify({ meta: { version: 1 }, digests: { constructor: [B], ['__proto__']: [B] } });
    const { policy } = createRuntimePolicy({ basePolicyText: base, allowlistText: NAMES.map((name) => `${A} ${name}\n`).join('') });
    expect(policy.digests['constructor']).to.deep.equal([A, B]);
    expect(Object.hasOwn(policy.digests, '__proto__')).to.equal(true);
    expect(policy.digests['__proto__']).to.deep.equal([A, B]);
    expect(policy.digests['toString']).to.deep.equal([A]);
  });

  it('a JSON policy keeps a "__proto__" path, in digests, keyrings and ima-buf, through compiling and writing', () => {
    const text = '{"meta":{"version":1},"digests":{"__proto__":["' + A + '"],"/bin/x":["' + B + '"]},' +
      '"keyrings":{"__proto__":["' + A + '"]},"ima-buf":{"__proto__":["' + B + '"]}}';
    const policy = parseRuntimePolicy(text);
    expect(Object.keys(policy.digests)).to.deep.equal(['__proto__', '/bin/x']);
    expect(Object.keys(policy.keyrings)).to.deep.equal(['__proto__']);
    expect(Object.keys(policy['ima-buf'])).to.deep.equal(['__proto__']);
    const compiled = compileRuntimePolicy(policy);
    expect(compiled.digests.get('__proto__')).to.deep.equal([A]);
    expect(compiled.keyrings.get('__proto__')).to.deep.equal([A]);
    expect(pythonJsonDumps(policy)).to.include(`"__proto__": ["${A}"]`);
  });
});
