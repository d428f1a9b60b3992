import { InvalidParameterValue } from '../../interfaces/errors.js';
import { FileReadError, readRegularFile } from '../../lib/files/regular-file.js';

/**
 * The bytes of a file a node's `driver_info` names: a regular file of at most `maxBytes`, read without
 * blocking (`readRegularFile`). @throws InvalidParameterValue naming the field, with the file and why
 */
export async function readDriverFile(path: string, setting: string, maxBytes: number): Promise<Buffer> {
  try {
    return await readRegularFile(path, { setting, maxBytes });
  } catch (error) {
    if (error instanceof FileReadError) throw new InvalidParameterValue(setting, error.detail, { cause: error });
    throw error;
  }
}
