import { expect } from 'chai';
import { findImportViolations, readImportGraph, resolveSpecifier, type ImportGraph } from '../helpers/import-graph.js';
import { REPO_ROOT } from '../helpers/paths.js';

/** The shipped code: everything the package builds except the tests. */
const SHIPPED = ['interfaces', 'drivers', 'lib', 'migrations', 'bench', 'fuzz', 'examples'];

describe('import rules (docs/architecture.md)', () => {
  describe('on a fixture graph', () => {
    const graph: ImportGraph = new Map([
      ['lib/tpm/verify.ts', ['node:crypto', './store.js']],
      ['lib/tpm/store.ts', ['../pki/files.js']],
      ['lib/pki/files.ts', ['node:fs']],
      ['lib/ima/parse.ts', ['../bytes/reader.js']],
      ['lib/bytes/reader.ts', []],
      ['lib/mb/internal/replay.ts', []],
      ['lib/mb/check.ts', ['./internal/replay.js']],
      ['lib/verifier/round.ts', ['../mb/internal/replay.js', 'knex']],
      ['test/mb/replay.test.ts', ['../../lib/mb/internal/replay.js']],
      ['lib/fuzz/targets.ts', ['../mb/internal/replay.js']],
      ['bench/replay-bench.ts', ['../lib/mb/internal/replay.js']],
      ['lib/ima/excludes.ts', ['../python-regex/internal/translate.js']],
      ['lib/python-regex/internal/translate.ts', ['node:fs']],
    ]);

    it('finds a core file that reaches I/O through another folder, with the chain', () => {
      const violations = findImportViolations(graph).filter((v) => v.rule === 'core-io');
      expect(violations.map((v) => v.chain)).to.deep.equal([
        ['lib/tpm/verify.ts', 'lib/tpm/store.ts', 'lib/pki/files.ts', 'node:fs'],
        ['lib/tpm/store.ts', 'lib/pki/files.ts', 'node:fs'],
        ['lib/ima/excludes.ts', 'lib/python-regex/internal/translate.ts', 'node:fs'],
        ['lib/python-regex/internal/translate.ts', 'node:fs'],
      ]);
    });

    it('finds an import of another domain\'s internal/ folder, and allows it inside the domain, in tests and in the fuzz harness', () => {
      const violations = findImportViolations(graph).filter((v) => v.rule === 'internal');
      expect(violations.map((v) => v.chain)).to.deep.equal([
        ['lib/verifier/round.ts', '../mb/internal/replay.js'],
        ['bench/replay-bench.ts', '../lib/mb/internal/replay.js'],
        ['lib/ima/excludes.ts', '../python-regex/internal/translate.js'],
      ]);
    });

    it('resolves relative specifiers to .ts files and leaves packages alone', () => {
      expect(resolveSpecifier('lib/a/b.ts', '../c/d.js')).to.equal('lib/c/d.ts');
      expect(resolveSpecifier('lib/a/b.ts', 'node:fs')).to.equal(undefined);
    });
  });

  it('the repository breaks neither rule', () => {
    const graph = readImportGraph(REPO_ROOT, SHIPPED);
    expect(graph.size).to.be.greaterThan(200);
    const violations = findImportViolations(graph).map((v) => `${v.rule}: ${v.chain.join(' -> ')}`);
    expect(violations).to.deep.equal([]);
  });
});
