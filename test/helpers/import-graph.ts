import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

/** Source file (repository-relative, `/`-separated) → the module specifiers it imports or re-exports. */
export type ImportGraph = ReadonlyMap<string, readonly string[]>;

/** One broken import rule, with the chain of files that leads to it. */
export interface ImportViolation {
  readonly rule: 'core-io' | 'internal';
  /** The files from the offending root to the importing file, then the forbidden specifier. */
  readonly chain: readonly string[];
}

/** Folders of the pure core: they decide, so they never do I/O, not even through another file. */
export const CORE_FOLDERS = ['lib/tpm', 'lib/ima', 'lib/mb', 'lib/attestation', 'lib/bytes', 'lib/python-regex'] as const;

/** Modules that do I/O (files, network, processes, databases); the core must not reach any of them. */
export const IO_MODULES = [
  'fs', 'fs/promises', 'net', 'tls', 'http', 'https', 'http2', 'child_process', 'dgram', 'worker_threads',
  'axios', 'knex', 'knex-pglite', 'pg', '@electric-sql/pglite', 'undici',
] as const;

/** Folders whose files may import any domain's `internal/`: the tests and the fuzz harness. */
const INTERNAL_READERS = ['test/', 'fuzz/', 'lib/fuzz/'] as const;

const SPECIFIER = /^\s*(?:import|export)\s(?:[^'";]*?\sfrom\s)?'([^']+)'/gm;
const DYNAMIC = /\bimport\(\s*'([^']+)'\s*\)/g;

/** Reads every .ts file under `folders` (relative to `root`) into an import graph. */
export function readImportGraph(root: string, folders: readonly string[]): ImportGraph {
  const graph = new Map<string, string[]>();
  const visit = (relative: string): void => {
    for (const entry of readdirSync(path.join(root, relative), { withFileTypes: true })) {
      const child = `${relative}/${entry.name}`;
      if (entry.isDirectory()) visit(child);
      else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) {
        const text = readFileSync(path.join(root, child), 'utf8');
        graph.set(child, [...text.matchAll(SPECIFIER), ...text.matchAll(DYNAMIC)].map((match) => match[1] as string));
      }
    }
  };
  folders.forEach(visit);
  return graph;
}

/** The graph's file a relative specifier names (`./x.js` → `dir/x.ts`), or undefined for a package. */
export function resolveSpecifier(from: string, specifier: string): string | undefined {
  if (!specifier.startsWith('.')) return undefined;
  return path.posix.normalize(path.posix.join(path.posix.dirname(from), specifier)).replace(/\.js$/, '.ts');
}

function bareModule(specifier: string): string {
  const name = specifier.replace(/^node:/, '');
  if (name.startsWith('@')) return name.split('/').slice(0, 2).join('/');
  return name === 'fs/promises' ? name : (name.split('/')[0] as string);
}

/**
 * Checks two rules over the graph:
 * - `core-io`: no file in a core folder reaches an I/O module, directly or through files it imports;
 * - `internal`: no file outside `lib/<domain>/` imports anything under `lib/<domain>/internal/`.
 * Tests (`test/`) may reach into internals, as jose's do, and so may the fuzz harness (`fuzz/`,
 * `lib/fuzz/`), which attacks single parsers; the rule binds the code that builds on a domain.
 */
export function findImportViolations(graph: ImportGraph): ImportViolation[] {
  const violations: ImportViolation[] = [];
  const io = new Set<string>(IO_MODULES);
  for (const file of graph.keys()) {
    if (!CORE_FOLDERS.some((folder) => file.startsWith(`${folder}/`))) continue;
    const seen = new Set<string>([file]);
    const queue: string[][] = [[file]];
    while (queue.length > 0) {
      const chain = queue.shift() as string[];
      const current = chain[chain.length - 1] as string;
      for (const specifier of graph.get(current) ?? []) {
        const target = resolveSpecifier(current, specifier);
        if (target === undefined) {
          if (io.has(bareModule(specifier))) violations.push({ rule: 'core-io', chain: [...chain, specifier] });
        } else if (!seen.has(target) && graph.has(target)) {
          seen.add(target);
          queue.push([...chain, target]);
        }
      }
    }
  }
  for (const [file, specifiers] of graph) {
    if (INTERNAL_READERS.some((folder) => file.startsWith(folder))) continue;
    for (const specifier of specifiers) {
      const target = resolveSpecifier(file, specifier);
      const domain = target === undefined ? undefined : /^(lib\/[^/]+)\/internal\//.exec(target)?.[1];
      if (domain !== undefined && !file.startsWith(`${domain}/`)) violations.push({ rule: 'internal', chain: [file, specifier] });
    }
  }
  return violations;
}
