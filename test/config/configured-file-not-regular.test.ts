import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, constants, openSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect } from 'chai';
import { InvalidConfig } from '../../interfaces/errors.js';
import { bootEmulatedNode } from '../../lib/agent/node-emulation.js';
import { startPushAgent } from '../../lib/agent/push/push-agent-server.js';
import type { Tpm } from '../../lib/tpm-access/tpm-port.js';
import { readConfiguredFile } from '../../lib/config/read-config-file.js';
import { REPO_ROOT } from '../helpers/paths.js';
import { tempDirPerTest } from '../helpers/temp-dir.js';

/** How long a read of a FIFO is given to give up before it is taken as hung; generous for a loaded host. */
const HANG_MS = 20_000;

/**
 * What `promise` settles with, or 'still waiting' after `HANG_MS`; then a writer opens and closes
 * `fifo`, so that a read waiting on it ends (at end of file) instead of holding a pool thread.
 */
async function settledOrHung(promise: Promise<unknown>, fifo: string): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise((resolve) => {
    timer = setTimeout(() => resolve('still waiting'), HANG_MS);
  });
  const outcome = await Promise.race([promise.then((value) => value, (error: unknown) => error), hung]);
  clearTimeout(timer);
  try {
    closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
  } catch {
    // ENXIO: no reader is waiting, as it should be.
  }
  return outcome;
}

/**
 * A setting naming a FIFO or a device: read with a plain readFile, a FIFO held the start for ever
 * (waiting for a writer) and /dev/zero was read until memory ran out. Refused at once, naming the setting.
 */
describe('config: a configured file that is not a regular file', function () {
  this.timeout(4 * HANG_MS);
  const temp = tempDirPerTest('ironlime-config-fifo-');

  it('readConfiguredFile refuses a FIFO at once, naming the setting', async () => {
    const fifo = path.join(temp.path, 'ca.fifo');
    execFileSync('mkfifo', [fifo]);
    const outcome = await settledOrHung(readConfiguredFile(fifo, 'agent.registrarCaFile'), fifo);
    expect(outcome).to.be.instanceOf(InvalidConfig);
    expect((outcome as Error).message).to.equal(`invalid config: agent.registrarCaFile: ${fifo} is not a regular file`);
  });

  it('readConfiguredFile refuses /dev/zero instead of reading it', async () => {
    const outcome = await readConfiguredFile('/dev/zero', 'broker.trustIssuers').then((value) => value, (error: unknown) => error);
    expect(outcome).to.be.instanceOf(InvalidConfig);
    expect((outcome as Error).message).to.equal('invalid config: broker.trustIssuers: /dev/zero is not a regular file');
  });

  it('the push agent refuses a FIFO given as --verifier-ca at start', async () => {
    const fifo = path.join(temp.path, 'verifier-ca.fifo');
    execFileSync('mkfifo', [fifo]);
    const started = startPushAgent(
      { dataDir: path.join(temp.path, 'data'), tpm: 'software', registrarUrl: 'http://127.0.0.1:1', verifierUrl: 'https://verifier.example:8881', verifierCaFile: fifo },
      { registrationAttempts: 1 },
    );
    const outcome = await settledOrHung(started, fifo);
    expect(outcome).to.be.instanceOf(InvalidConfig);
    expect((outcome as Error).message).to.equal(`invalid config: agent.verifierCaFile: ${fifo} is not a regular file`);
  });

  it('the emulated agent refuses a FIFO given as its boot log at once, before the TPM is touched', async () => {
    const fifo = path.join(temp.path, 'boot-log.fifo');
    execFileSync('mkfifo', [fifo]);
    const outcome = await settledOrHung(bootEmulatedNode({} as Tpm, path.join(temp.path, 'data'), fifo, undefined), fifo);
    expect(outcome).to.be.instanceOf(InvalidConfig);
    expect((outcome as Error).message).to.equal(`invalid config: agent.bootLog: ${fifo} is not a regular file`);
  });

  it('loadConfig refuses a FIFO given as the config file instead of blocking the process', () => {
    const fifo = path.join(temp.path, 'config.fifo');
    execFileSync('mkfifo', [fifo]);
    // In a child: a synchronous read of a FIFO blocks the whole process, which only a kill ends.
    const module = pathToFileURL(path.join(REPO_ROOT, 'dist', 'lib', 'config', 'load-config.js')).href;
    const script = `import(${JSON.stringify(module)}).then((m) => { try { m.loadConfig({ file: ${JSON.stringify(fifo)} }); } catch (e) { process.stdout.write(e.message); } });`;
    const run = spawnSync(process.execPath, ['-e', script], { timeout: HANG_MS, encoding: 'utf8' });
    expect(run.signal, 'the child hung reading the FIFO and was killed').to.equal(null);
    expect(run.stdout).to.equal(`invalid config: ${fifo}: ${fifo} is not a regular file`);
  });
});
