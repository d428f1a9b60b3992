import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { InvalidConfig, InvalidParameterValue } from '../../interfaces/errors.js';
import { FileReadError, readRegularFile } from '../files/regular-file.js';
import { fileAgentLogs, type AgentLogs } from './agent-logs.js';
import { MAX_BOOT_LOG_BYTES } from './boot-log-cache.js';
import { MemoryImaList } from './memory-ima-list.js';
import { CERTIFICATE_MODE, readIfExists, writeFileAtomic } from '../pki/pem-files.js';
import { replayBootLog } from '../tpm-access/boot-log-replayer.js';
import { ImaEmulator, type ImaMeasurement } from '../tpm-access/ima-emulator.js';
import type { ImaNgEntry } from '../tpm-access/ima-ng-template.js';
import { openTpm2ToolsTpm } from '../tpm-access/tpm2-tools/tpm-adapter.js';
import type { Tpm } from '../tpm-access/tpm-port.js';

/** Files of an emulated node in the agent's data dir. */
export const EMULATION_FILES = {
  imaLog: path.join('ima', 'ascii_runtime_measurements'),
  /** Written while the agent runs: how another process reaches the same TPM and log (`ima-append`). */
  state: 'emulation.json',
} as const;

/** The shipped UEFI log an emulated node boots with (`fixtures/eventlogs`, see its README). */
export function defaultBootLogPath(): string {
  let dir = import.meta.dirname;
  while (!existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) {
      throw new InvalidConfig('agent.bootLog', `no package root above ${import.meta.dirname} for the default boot log`);
    }
    dir = parent;
  }
  return path.join(dir, 'fixtures', 'eventlogs', 'ubuntu-2104-no-secure-boot.bin');
}

/** A node whose firmware and kernel are played by us: its boot log, its IMA log, and a way to "run" files. */
export interface EmulatedNode {
  readonly bootLogPath: string;
  readonly imaLogPath: string;
  /**
   * What the agent serves: with no TCTI recorded (the software TPM, or a TPM object handed in, as the
   * demo does) this process is the only writer of the IMA list (`ima-append` refuses a state without
   * a TCTI), so both logs are served from memory, exactly as written and as booted; with a TCTI another
   * process may append, so they are read from the files.
   */
  readonly logs: AgentLogs;
  /** Measures files as the kernel's IMA would (ima-ng line, then PCR 10 of every bank). */
  measure(files: readonly ImaMeasurement[]): Promise<ImaNgEntry[]>;
  /** Removes the state file that lets `ima-append` reach this node. */
  close(): Promise<void>;
}

interface EmulationState {
  readonly tcti: string | null;
  readonly imaLog: string;
}

/**
 * Boots an emulated node on a freshly started TPM: replays the UEFI log into the PCRs it touches
 * (0–9 and 14 for the shipped log) as firmware and boot loader would, then starts an IMA log in
 * `<dataDir>/ima` whose first entry is boot_aggregate over PCRs 0–9. The TPM must be fresh (every
 * start of the agent's own swtpm or of the software TPM is a reboot); `replayBootLog` refuses a TPM
 * whose PCRs were already extended. With a `tcti`, records it so `appendImaFromCli` can reach the TPM.
 */
export async function bootEmulatedNode(tpm: Tpm, dataDir: string, bootLogPath: string, tcti: string | undefined): Promise<EmulatedNode> {
  let log: Uint8Array;
  try {
    // A regular file up to what the agent sends of it: a FIFO held the start for ever, /dev/zero filled memory.
    log = new Uint8Array(await readRegularFile(bootLogPath, { setting: 'agent.bootLog', maxBytes: MAX_BOOT_LOG_BYTES }));
  } catch (error) {
    if (error instanceof FileReadError) throw new InvalidConfig('agent.bootLog', error.detail, { cause: error });
    throw error;
  }
  await replayBootLog(tpm, log);
  const imaLogPath = path.resolve(dataDir, EMULATION_FILES.imaLog);
  await mkdir(path.dirname(imaLogPath), { recursive: true });
  const memoryList = tcti === undefined ? new MemoryImaList() : undefined;
  const emulator = new ImaEmulator({ tpm, logPath: imaLogPath, ...(memoryList === undefined ? {} : { copy: memoryList }) });
  await emulator.start();
  const statePath = path.join(dataDir, EMULATION_FILES.state);
  const state: EmulationState = { tcti: tcti ?? null, imaLog: imaLogPath };
  await writeFileAtomic(statePath, `${JSON.stringify(state, null, 2)}\n`, CERTIFICATE_MODE);
  let queue: Promise<unknown> = Promise.resolve();
  const logs = memoryList === undefined ? fileAgentLogs(imaLogPath, bootLogPath) : memoryAgentLogs(memoryList, Buffer.from(log).toString('base64'));
  return {
    bootLogPath,
    imaLogPath,
    logs,
    measure(files) {
      const run = queue.then(() => emulator.measure(files));
      queue = run.catch(() => undefined);
      return run;
    },
    close: () => rm(statePath, { force: true }),
  };
}

function memoryAgentLogs(imaList: MemoryImaList, bootLogBase64: string): AgentLogs {
  return {
    imaList: async (requested) => imaList.slice(requested),
    imaLineCount: async () => imaList.lineCount(),
    bootLogBase64: async () => bootLogBase64,
  };
}

/**
 * `ironlime agent ima-append`: measures one file into the IMA log of the emulated node running from
 * `dataDir`, from another process, through the TPM's TCTI (own swtpm or an external one). The
 * in-process software TPM cannot be reached from outside: use the running agent's `appendIma`.
 */
export async function appendImaFromCli(dataDir: string, measurement: ImaMeasurement): Promise<ImaNgEntry> {
  const text = await readIfExists(path.join(dataDir, EMULATION_FILES.state));
  if (text === undefined) {
    throw new InvalidParameterValue('--data-dir', `no emulated agent is running from ${dataDir} (no ${EMULATION_FILES.state})`);
  }
  const state = parseState(text);
  if (state.tcti === null) {
    throw new InvalidParameterValue('--data-dir', 'the agent uses the in-process software TPM, which no other process can reach');
  }
  const tpm = await openTpm2ToolsTpm({ tcti: state.tcti });
  try {
    const [entry] = await new ImaEmulator({ tpm, logPath: state.imaLog }).measure([measurement]);
    return entry as ImaNgEntry;
  } finally {
    await tpm.close();
  }
}

function parseState(text: string): EmulationState {
  try {
    const value = JSON.parse(text) as Partial<EmulationState>;
    if ((typeof value.tcti === 'string' || value.tcti === null) && typeof value.imaLog === 'string') {
      return { tcti: value.tcti, imaLog: value.imaLog };
    }
  } catch {
    // Reported below, like a wrong shape.
  }
  throw new InvalidParameterValue('--data-dir', `${EMULATION_FILES.state} is not an emulation state file`);
}
