import { InvalidParameterValue } from '../../interfaces/errors.js';
import { FileReadError, readFileOrPipe, readRegularFile } from '../files/regular-file.js';

/** Keylime's largest upload (100 MiB): no verifier takes a policy or list beyond it, so no file an operator names need be larger. */
export const MAX_OPERATOR_FILE_BYTES = 100 * 1024 * 1024;

/**
 * The bytes of a file a command-line option names, at most `maxBytes` (default `MAX_OPERATOR_FILE_BYTES`):
 * by default `readFileOrPipe` (`<(generate-policy)` is read, `/dev/zero` is refused past the bound, a
 * folder or a socket at once); with `pipes: false`, a regular file only (`readRegularFile`).
 * @throws InvalidParameterValue naming the option: `--log: cannot read /x: ENOENT`, `--log: /x holds more than …`
 */
export async function readOptionFile(file: string, option: string, limits: { readonly maxBytes?: number; readonly pipes?: false } = {}): Promise<Buffer> {
  const read = limits.pipes === false ? readRegularFile : readFileOrPipe;
  try {
    return await read(file, { setting: option, maxBytes: limits.maxBytes ?? MAX_OPERATOR_FILE_BYTES });
  } catch (cause) {
    if (cause instanceof FileReadError) throw new InvalidParameterValue(option, cause.detail, { cause });
    throw cause;
  }
}
