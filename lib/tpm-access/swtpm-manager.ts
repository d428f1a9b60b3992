import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createServer, connect } from 'node:net';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { withParentDeathSignal } from './parent-death-signal.js';
import { manufactureSwtpm, readLocalCaCertificates, type LocalCaCertificates } from './swtpm-setup.js';
import { TpmAccessError } from './tpm-access-error.js';
import type { EkAlgorithm, TpmHashAlgorithm } from './tpm-port.js';

export interface StartSwtpmOptions {
  /** Absolute TPM state directory. An existing state is reused (the node "reboots" with its identity). */
  stateDir: string;
  /** Manufacture RSA + ECC EKs with certificates from the local CA (default true). */
  manufactureEk?: boolean;
  /** Which EK the adapters built from this handle use (default `rsa`). swtpm_setup always makes both. */
  ekAlgorithm?: EkAlgorithm;
  /** Active PCR banks (default sha1 and sha256, like most real TPMs and what the IMA emulator extends). */
  pcrBanks?: readonly TpmHashAlgorithm[];
  /** Absolute directory of swtpm's local CA (default `<stateDir>/localca`); share it between TPMs to trust one CA. */
  caDir?: string;
  /**
   * Let swtpm run TPM2_Startup(CLEAR) itself at power-on (default true). With false, the first command
   * after every (re)start fails with TPM_RC_INITIALIZE until someone sends TPM2_Startup, as on a machine
   * whose firmware did not.
   */
  startup?: boolean;
  /** Time allowed for manufacture and for swtpm to answer (default 60 s). */
  timeoutMs?: number;
  /** Told when the orderly stop's TPM2_Shutdown fails (the next start's quotes then report clockInfo.safe = 0). */
  log?: SwtpmLog;
}

/** The part of a pino logger the manager uses. */
export interface SwtpmLog {
  warn(details: object, message: string): void;
}

/** A running swtpm socket server. */
export interface SwtpmHandle {
  /** TSS2 TCTI string for tpm2-tools (`swtpm:host=127.0.0.1,port=<port>`; the control port is port + 1). */
  readonly tcti: string;
  readonly port: number;
  readonly ctrlPort: number;
  readonly stateDir: string;
  readonly caDir: string;
  readonly ekAlgorithm: EkAlgorithm;
  /** Process id of the current swtpm, or undefined once stopped. */
  readonly pid: number | undefined;
  /** PEM root and intermediate of the local CA that issued this TPM's EK certificates. */
  localCaCertificates(): Promise<LocalCaCertificates>;
  /**
   * Stops swtpm and waits until it has exited (SIGTERM, then SIGKILL after 5 s). Idempotent. By default
   * the OS's part of an orderly shutdown comes first (TPM2_Shutdown(CLEAR), as Linux sends it), so the
   * TPM clock stays `safe`; `{ orderly: false }` is a power loss instead.
   */
  stop(options?: SwtpmStopOptions): Promise<void>;
  /**
   * Stops and starts swtpm on the same ports and state: a reboot (PCRs reset, resetCount grows), or a
   * power loss with `{ orderly: false }` (the next quote then reports clockInfo.safe = 0).
   */
  restart(options?: SwtpmStopOptions): Promise<void>;
}

export interface SwtpmStopOptions {
  /** Send TPM2_Shutdown(CLEAR) before stopping (default true). */
  orderly?: boolean;
}

/** Every swtpm this process started and has not yet seen exit: killed if the process exits first. */
const liveChildren = new Set<ChildProcess>();
let exitHookInstalled = false;

/**
 * Manufactures (once) and starts swtpm as a TCP socket server on 127.0.0.1, on a free pair of ports
 * (the swtpm TCTI requires control port = server port + 1). swtpm runs in the foreground as our child,
 * never as a daemon, so we always hold its pid: `stop()` ends it, and an exit hook kills any still
 * running if this process ends first. It runs in a process group of its own, so a Ctrl-C on the
 * terminal (sent to the whole foreground group) reaches only us: our orderly stop sends
 * TPM2_Shutdown before ending it, and its clock stays `safe`. Out of our group, it would outlive a
 * process killed outright, or by a signal to the group it has no handler for (SIGHUP when the terminal
 * closes), and hold the state directory's lock; where `setpriv` is installed the kernel ends it then
 * (`withParentDeathSignal`).
 */
export async function startSwtpm(options: StartSwtpmOptions): Promise<SwtpmHandle> {
  const stateDir = options.stateDir;
  const caDir = options.caDir ?? path.join(stateDir, 'localca');
  const timeoutMs = options.timeoutMs ?? 60_000;
  await manufactureSwtpm({
    stateDir,
    caDir,
    createEk: options.manufactureEk ?? true,
    pcrBanks: options.pcrBanks ?? ['sha1', 'sha256'],
    timeoutMs,
  });
  const flags = options.startup === false ? 'not-need-init' : 'not-need-init,startup-clear';
  let port = 0;
  let child: ChildProcess | undefined;
  for (let attempt = 0; child === undefined; attempt += 1) {
    port = await findFreePortPair();
    try {
      child = await launch(stateDir, port, flags, timeoutMs);
    } catch (error) {
      // Another process may have taken the ports between our probe and swtpm's bind.
      if (attempt >= 4 || !(error instanceof PortInUse)) {
        throw error;
      }
    }
  }
  let current: ChildProcess | undefined = child;
  const tcti = `swtpm:host=127.0.0.1,port=${port}`;
  const stop = async (stopOptions: SwtpmStopOptions = {}): Promise<void> => {
    const running = current;
    current = undefined;
    if (running !== undefined) {
      if (stopOptions.orderly !== false) {
        await orderlyShutdown(tcti, options.log);
      }
      await terminate(running);
    }
  };
  return {
    tcti,
    port,
    ctrlPort: port + 1,
    stateDir,
    caDir,
    ekAlgorithm: options.ekAlgorithm ?? 'rsa',
    get pid() {
      return current?.pid;
    },
    localCaCertificates: () => readLocalCaCertificates(caDir),
    stop,
    async restart(stopOptions?: SwtpmStopOptions) {
      await stop(stopOptions);
      current = await relaunch(stateDir, port, flags, timeoutMs);
    },
  };
}

/** Ports may sit in TIME_WAIT for a moment after swtpm exits; retry the bind briefly. */
async function relaunch(stateDir: string, port: number, flags: string, timeoutMs: number): Promise<ChildProcess> {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await launch(stateDir, port, flags, timeoutMs);
    } catch (error) {
      if (attempt >= 20 || !(error instanceof PortInUse)) {
        throw error;
      }
      await delay(250);
    }
  }
}

class PortInUse extends TpmAccessError {}

const SWTPM_NOT_FOUND = 'not found; install swtpm';
/** setpriv's exit status when the command it was to run is not found (as a shell's). */
const EXEC_NOT_FOUND = 127;

async function launch(stateDir: string, port: number, flags: string, timeoutMs: number): Promise<ChildProcess> {
  installExitHook();
  const swtpm = withParentDeathSignal('swtpm', [
    'socket',
    '--tpm2',
    '--server',
    `type=tcp,port=${port},bindaddr=127.0.0.1`,
    '--ctrl',
    `type=tcp,port=${port + 1},bindaddr=127.0.0.1`,
    '--tpmstate',
    `dir=${stateDir}`,
    '--flags',
    flags,
  ]);
  // detached: its own process group, out of reach of a signal sent to ours (Ctrl-C); the parent-death
  // signal still ends it when we die without running the exit hook.
  const child = spawn(swtpm.command, swtpm.args, { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  liveChildren.add(child);
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-4096);
  });
  let exited: string | undefined;
  let spawnError: Error | undefined;
  child.once('error', (error) => {
    spawnError = error;
  });
  child.once('exit', (code, signal) => {
    liveChildren.delete(child);
    exited = signal === null ? `exit status ${String(code)}` : `signal ${signal}`;
  });
  const deadline = Date.now() + timeoutMs;
  while (!(await answers(port)) || !(await answers(port + 1))) {
    if (spawnError !== undefined) {
      liveChildren.delete(child);
      const detail = (spawnError as NodeJS.ErrnoException).code === 'ENOENT' ? SWTPM_NOT_FOUND : spawnError.message;
      throw new TpmAccessError(`swtpm: ${detail}`, { cause: spawnError });
    }
    if (exited === `exit status ${EXEC_NOT_FOUND}`) {
      throw new TpmAccessError(`swtpm: ${SWTPM_NOT_FOUND}`);
    }
    if (exited !== undefined) {
      const message = `swtpm on port ${port} stopped at start (${exited}): ${stderr.trim()}`;
      throw /in use/i.test(stderr) ? new PortInUse(message) : new TpmAccessError(message);
    }
    if (Date.now() > deadline) {
      await terminate(child);
      throw new TpmAccessError(`swtpm on port ${port} did not answer within ${timeoutMs} ms`);
    }
    await delay(20);
  }
  return child;
}

/**
 * TPM2_Shutdown(TPM_SU_CLEAR) through tpm2-tools, as the kernel sends at reboot, so the TPM saves its
 * clock (Part 3 §9.4). Best effort: a failure (a TPM never started, tpm2-tools missing, swtpm already
 * gone) is logged at warn and the stop goes on.
 */
function orderlyShutdown(tcti: string, log: SwtpmLog | undefined): Promise<void> {
  return new Promise((resolve) => {
    execFile('tpm2_shutdown', ['-c'], { timeout: 10_000, killSignal: 'SIGKILL', env: { ...process.env, TPM2TOOLS_TCTI: tcti } }, (error, _stdout, stderr) => {
      if (error !== null) {
        log?.warn({ err: error, stderr: String(stderr).trim(), tcti }, 'swtpm stop: TPM2_Shutdown failed; the next quotes will report clockInfo.safe = 0');
      }
      resolve();
    });
  });
}

function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) {
    liveChildren.delete(child);
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    const force = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(force);
      liveChildren.delete(child);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

function installExitHook(): void {
  if (exitHookInstalled) {
    return;
  }
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of liveChildren) {
      child.kill('SIGKILL');
    }
  });
}

/** True once something accepts TCP connections on 127.0.0.1:`port`. */
function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** A port p such that p and p + 1 are both free on 127.0.0.1 right now. */
async function findFreePortPair(): Promise<number> {
  for (;;) {
    const first = await listenOn(0);
    if (first === undefined) {
      continue;
    }
    const second = first.port < 65535 ? await listenOn(first.port + 1) : undefined;
    await first.close();
    if (second !== undefined) {
      await second.close();
      return first.port;
    }
  }
}

function listenOn(port: number): Promise<{ port: number; close(): Promise<void> } | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(undefined));
    server.listen({ host: '127.0.0.1', port, exclusive: true }, () => {
      const address = server.address();
      const bound = typeof address === 'object' && address !== null ? address.port : port;
      resolve({ port: bound, close: () => new Promise<void>((done) => server.close(() => done())) });
    });
  });
}
