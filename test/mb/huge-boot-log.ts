import { readFileSync } from 'node:fs';
import { parseEventLog } from '../../lib/mb/parse-event-log.js';
import { vectorPath } from '../helpers/paths.js';

/** rust-keylime's test UEFI log: SHA-256 crypto-agile, PCRs 0-9 and 14, Secure Boot off. */
export const REAL_BOOT_LOG = new Uint8Array(readFileSync(vectorPath('rust-keylime', 'uefi_log.bin')));

/** The PCR 9 event repeated by default: a file GRUB read that the real log's refstate accepts. */
const GRUBENV = '(hd0,gpt2)/grub2/grubenv';

/**
 * The real log grown to about `size` bytes by appending one of its own events again and again, as a
 * root user on the node could by extending that PCR at runtime: a hostile but well-formed log, which
 * the node's TPM (a `FakeAgent` replaying it) quotes. The event repeated is the first PCR 9 file GRUB
 * read that is neither the kernel nor the initrd, so the refstate made from the real log still passes.
 */
export function grownBootLog(size: number, text = GRUBENV): Uint8Array {
  const one = repeatedEvent(text);
  return grownBy(one, Math.max(0, Math.floor((size - REAL_BOOT_LOG.length) / one.length)));
}

/** `grownBootLog` of `events` events in all. */
export function grownBootLogOfEvents(events: number): Uint8Array {
  return grownBy(repeatedEvent(GRUBENV), events - parseEventLog(REAL_BOOT_LOG).events.length);
}

function repeatedEvent(text: string): Uint8Array {
  const log = parseEventLog(REAL_BOOT_LOG);
  const index = log.events.findIndex((e) => e.pcrIndex === 9 && Buffer.from(e.untrustedData).toString('latin1').startsWith(text));
  const event = log.events[index];
  if (event === undefined) throw new Error(`no PCR 9 event for ${text} in the log`);
  const end = log.events[index + 1]?.offset ?? REAL_BOOT_LOG.length;
  return REAL_BOOT_LOG.subarray(event.offset, end);
}

function grownBy(one: Uint8Array, copies: number): Uint8Array {
  const out = new Uint8Array(REAL_BOOT_LOG.length + copies * one.length);
  out.set(REAL_BOOT_LOG);
  for (let i = 0; i < copies; i += 1) out.set(one, REAL_BOOT_LOG.length + i * one.length);
  return out;
}
