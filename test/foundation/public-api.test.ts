import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { pino } from 'pino';
import type { TaskLogger } from '../../interfaces/task.js';
import { REPO_ROOT } from '../helpers/paths.js';

/** The root of this compiled tree (`dist/` in `npm test`): two folders above this file. */
const BUILD_ROOT = path.resolve(import.meta.dirname, '..', '..');

interface PackageJson {
  readonly exports: Record<string, { types?: string; default?: string } | string>;
}

/** Maps a `./dist/…` path of package.json onto this compiled tree. */
function inThisBuild(target: string): string {
  expect(target, `${target} should point into ./dist/`).to.match(/^\.\/dist\//);
  return path.join(BUILD_ROOT, target.slice('./dist/'.length));
}

function documentedExports(): string[] {
  const text = readFileSync(path.join(REPO_ROOT, 'docs', 'library.md'), 'utf8');
  const section = /<!-- exports:start -->([\s\S]*?)<!-- exports:end -->/.exec(text)?.[1] ?? '';
  return [...section.matchAll(/^\| `([A-Za-z_][A-Za-z0-9_]*)` \|/gm)].map((match) => match[1] as string);
}

describe('public entry point', function () {
  it('package.json#exports["."] resolves to the compiled root and its declarations', async function () {
    const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as PackageJson;
    const root = pkg.exports['.'];
    expect(root).to.be.an('object');
    const entry = root as { types?: string; default?: string };
    expect(existsSync(inThisBuild(entry.types ?? ''))).to.equal(true);
    const loaded = (await import(inThisBuild(entry.default ?? ''))) as Record<string, unknown>;
    expect(loaded['AttestationHooks']).to.be.a('function');
  });

  it('exports exactly the names docs/library.md lists, each defined', async function () {
    const loaded = (await import(path.join(BUILD_ROOT, 'index.js'))) as Record<string, unknown>;
    const documented = documentedExports();
    expect(documented.length).to.be.greaterThan(20);
    for (const name of documented) {
      expect(loaded[name], `${name} is documented but not exported`).to.not.equal(undefined);
    }
    const undocumented = Object.keys(loaded).filter((name) => !documented.includes(name));
    expect(undocumented, 'exported but not listed in docs/library.md').to.deep.equal([]);
  });

  it('accepts a pino logger as a task logger', function () {
    const logger: TaskLogger = pino({ level: 'silent' });
    expect(() => logger.warn({ node: 'n' }, 'attestation failed')).to.not.throw();
  });
});
