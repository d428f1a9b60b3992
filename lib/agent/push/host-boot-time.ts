import path from 'node:path';
import type { Logger } from 'pino';
import { readRegularFile } from '../../files/regular-file.js';
import { CERTIFICATE_MODE, readIfExists, writeFileAtomic } from '../../pki/pem-files.js';

/** The file in the agent's data dir keeping the boot time sent for the current boot. */
export const BOOT_TIME_FILE = 'push-boot-time.json';

/** Where the kernel's view is read (tests point these at their own files). */
export interface BootTimeSources {
  /** Holds `btime <seconds>` (default /proc/stat). */
  readonly procStat?: string;
  /** This boot's random id, new at every boot (default /proc/sys/kernel/random/boot_id). */
  readonly bootIdFile?: string;
}

interface StoredBootTime {
  readonly boot_id: string;
  readonly boot_time: string;
}

/**
 * The host's boot time for `system_info.boot_time`, the same for the whole boot. The kernel derives
 * `btime` from the wall clock minus the uptime, so it moves whenever NTP steps the clock, and the
 * verifier refuses a boot time earlier than the one it stored (spec §10.3): an agent restarted after
 * a step back would be refused until the node reboots. So the boot time first sent is kept in
 * `<dataDir>/push-boot-time.json` with the kernel's boot id, and reused while the boot id is
 * unchanged; an unreadable or garbled file is replaced from `btime`. Without a boot id (no /proc)
 * nothing is kept: `btime`, or the process start when /proc/stat cannot be read either. A file that
 * cannot be written (read-only or missing data dir) is logged and `btime` sent: keeping it only
 * guards a later restart, so it must not stop this one.
 */
export async function hostBootTime(dataDir: string, sources: BootTimeSources = {}, log?: Pick<Logger, 'warn'>): Promise<Date> {
  const bootId = (await readOptional(sources.bootIdFile ?? '/proc/sys/kernel/random/boot_id'))?.trim();
  const file = path.join(dataDir, BOOT_TIME_FILE);
  if (bootId !== undefined && bootId !== '') {
    const kept = storedFor(await readIfExists(file).catch(() => undefined), bootId);
    if (kept !== undefined) return kept;
  }
  const bootTime = await kernelBootTime(sources.procStat ?? '/proc/stat');
  if (bootId !== undefined && bootId !== '') {
    const stored: StoredBootTime = { boot_id: bootId, boot_time: bootTime.toISOString() };
    await writeFileAtomic(file, `${JSON.stringify(stored)}\n`, CERTIFICATE_MODE).catch((error: unknown) =>
      log?.warn({ err: error, file }, 'cannot keep the boot time sent; a restart after a clock step back may be refused until the node reboots'),
    );
  }
  return bootTime;
}

/** The kept boot time when `text` is a well-formed record for `bootId`. */
function storedFor(text: string | undefined, bootId: string): Date | undefined {
  if (text === undefined) return undefined;
  let stored: Partial<StoredBootTime>;
  try {
    stored = JSON.parse(text) as Partial<StoredBootTime>;
  } catch {
    return undefined;
  }
  if (stored?.boot_id !== bootId || typeof stored.boot_time !== 'string') return undefined;
  const at = new Date(stored.boot_time);
  return Number.isFinite(at.getTime()) && at.toISOString() === stored.boot_time ? at : undefined;
}

/** `btime` of /proc/stat; the process start when it cannot be read. */
async function kernelBootTime(procStat: string): Promise<Date> {
  const btime = /^btime (\d+)$/m.exec((await readOptional(procStat)) ?? '')?.[1];
  return btime === undefined ? new Date(Date.now() - process.uptime() * 1000) : new Date(Number(btime) * 1000);
}

/** Longest kernel file read: /proc/stat of a host with thousands of CPUs is well under it. */
const MAX_PROC_FILE_BYTES = 4 * 1024 * 1024;

/** The file's text, or undefined when it cannot be read, is no regular file (a FIFO waited for ever) or is longer than the bound. */
async function readOptional(file: string): Promise<string | undefined> {
  try {
    return (await readRegularFile(file, { setting: file, maxBytes: MAX_PROC_FILE_BYTES })).toString('utf8');
  } catch {
    return undefined;
  }
}
