import { BootLogCache } from './boot-log-cache.js';
import type { ImaListSlice } from './ima-list-slice.js';
import { ImaLogReader } from './ima-log-reader.js';

/** The logs an agent sends with its quotes. */
export interface AgentLogs {
  /** The IMA list from line `requested` on (Keylime's `ima_ml_entry` rules); undefined while unreadable (no IMA on this host). */
  imaList(requested: number): Promise<ImaListSlice | undefined>;
  /** Complete lines in the IMA list, without reading them back (a push agent's capabilities); undefined while unreadable. */
  imaLineCount(): Promise<number | undefined>;
  /** The UEFI event log in base64 (`mb_measurement_list`); undefined while unreadable. */
  bootLogBase64(): Promise<string | undefined>;
}

/** The logs read from the kernel's files (or the configured ones), incrementally and encoded once. */
export function fileAgentLogs(imaLogPath: string | undefined, bootLogPath: string | undefined): AgentLogs {
  const imaLog = imaLogPath === undefined ? undefined : new ImaLogReader(imaLogPath);
  const bootLog = bootLogPath === undefined ? undefined : new BootLogCache(bootLogPath);
  return {
    imaList: async (requested) => imaLog?.slice(requested),
    imaLineCount: async () => imaLog?.lineCount(),
    bootLogBase64: async () => bootLog?.base64(),
  };
}
