import { InvalidArgumentError } from 'commander';

/** Commander parser for `--port`: 0 to 65535. */
export function port(text: string): number {
  if (!/^[0-9]{1,5}$/.test(text) || Number(text) > 65535) {
    throw new InvalidArgumentError('must be a port number from 0 to 65535');
  }
  return Number(text);
}

/** Commander reducer for repeatable options (`--tls-san a --tls-san b`). */
export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
