import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

/**
 * Where seeds come from: the real vectors beside the repository (`../shared/vectors`, or
 * `IRONLIME_VECTORS_DIR`) and the package's own fixtures. A missing file is skipped, so the harness
 * still runs (on fewer seeds) from an installed package; each target also has built-in seeds.
 */
export function packageRoot(): string {
  let dir = import.meta.dirname;
  while (!existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) {
      return process.cwd();
    }
    dir = parent;
  }
  return dir;
}

export function vectorsDir(): string {
  return process.env['IRONLIME_VECTORS_DIR'] ?? path.resolve(packageRoot(), '..', 'shared', 'vectors');
}

/** The bytes of each existing file, relative to the vectors folder. */
export function vectorFiles(...relative: string[]): Uint8Array[] {
  return existing(relative.map((file) => path.join(vectorsDir(), file)));
}

/** The bytes of each existing file, relative to the package root. */
export function packageFiles(...relative: string[]): Uint8Array[] {
  return existing(relative.map((file) => path.join(packageRoot(), file)));
}

/** The bytes of every file of a vectors folder whose name matches `pattern`. */
export function vectorFolder(relative: string, pattern: RegExp): Uint8Array[] {
  const dir = path.join(vectorsDir(), relative);
  if (!existsSync(dir)) {
    return [];
  }
  return existing(readdirSync(dir).filter((f) => pattern.test(f)).sort().map((f) => path.join(dir, f)));
}

export function asText(files: readonly Uint8Array[]): string[] {
  return files.map((bytes) => Buffer.from(bytes).toString('utf8'));
}

function existing(files: readonly string[]): Uint8Array[] {
  return files.filter((file) => existsSync(file)).map((file) => new Uint8Array(readFileSync(file)));
}
