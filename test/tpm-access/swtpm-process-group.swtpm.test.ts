import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { startSwtpm } from '../../lib/tpm-access/swtpm-manager.js';
import { openTpm2ToolsTpm } from '../../lib/tpm-access/tpm2-tools/tpm-adapter.js';
import { parseTpmsAttest } from '../../lib/tpm/tpms-attest.js';
import { processAlive } from '../helpers/process-alive.js';

const managerUrl = new URL('../../lib/tpm-access/swtpm-manager.js', import.meta.url).href;
const adapterUrl = new URL('../../lib/tpm-access/tpm2-tools/tpm-adapter.js', import.meta.url).href;

/**
 * An "agent" in a child process: starts swtpm on `stateDir`, makes an AK, prints `ready <swtpm pid>`,
 * then on SIGINT stops in order (TPM2_Shutdown, then swtpm) — or with `crash`, throws at once.
 */
function agentScript(stateDir: string, crash: boolean): string {
  return `
const { startSwtpm } = await import(${JSON.stringify(managerUrl)});
const { openTpm2ToolsTpm } = await import(${JSON.stringify(adapterUrl)});
const swtpm = await startSwtpm({ stateDir: ${JSON.stringify(stateDir)} });
const tpm = await openTpm2ToolsTpm({ tcti: swtpm.tcti });
await tpm.ensureAk('sha256');
process.once('SIGINT', async () => { await tpm.close(); await swtpm.stop(); process.exit(0); });
process.stdout.write('ready ' + swtpm.pid + '\\n');
${crash ? "setTimeout(() => { throw new Error('agent crashed'); }, 10);" : 'setInterval(() => undefined, 1000);'}
`;
}

/** Runs the agent script in its own process group (as a shell runs a foreground job); resolves once ready. */
async function startAgentProcess(dir: string, crash: boolean): Promise<{ pid: number; swtpmPid: number; exited: Promise<unknown> }> {
  const script = path.join(dir, 'agent.mjs');
  await writeFile(script, agentScript(path.join(dir, 'state'), crash));
  const child = spawn(process.execPath, [script], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = once(child, 'exit');
  let output = '';
  child.stdout.setEncoding('utf8');
  const ready = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (chunk: string) => {
      output += chunk;
      const line = /^ready (\d+)$/m.exec(output);
      if (line?.[1] !== undefined) resolve(line[1]);
    });
    child.once('exit', (code) => reject(new Error(`agent script exited (${String(code)}) before it was ready`)));
  });
  return { pid: child.pid as number, swtpmPid: Number(ready), exited };
}

describe('swtpm manager: swtpm in its own process group (real swtpm)', function () {
  this.timeout(120_000);
  let dir: string;

  beforeEach(async function () {
    dir = await mkdtemp(path.join(tmpdir(), 'ironlime-swtpm-pgrp-'));
  });
  afterEach(async function () {
    await rm(dir, { recursive: true, force: true });
  });

  it('a Ctrl-C to the agent\'s process group leaves swtpm to the agent\'s orderly stop: the clock stays safe', async function () {
    const agent = await startAgentProcess(dir, false);
    process.kill(-agent.pid, 'SIGINT');
    await agent.exited;
    expect(processAlive(agent.swtpmPid), 'swtpm after the agent stopped').to.equal(false);
    const swtpm = await startSwtpm({ stateDir: path.join(dir, 'state') });
    const tpm = await openTpm2ToolsTpm({ tcti: swtpm.tcti });
    try {
      const quote = await tpm.quote({ nonce: new Uint8Array([1, 2, 3]), pcrs: [0], hashAlg: 'sha256' });
      expect(parseTpmsAttest(quote.attest).clockInfo.safe, 'clockInfo.safe after the restart').to.equal(true);
    } finally {
      await tpm.close();
      await swtpm.stop();
    }
  });

  it('an agent that dies of an uncaught exception takes its swtpm with it', async function () {
    const agent = await startAgentProcess(dir, true);
    await agent.exited;
    try {
      // The exit hook's SIGKILL is delivered, and the orphan reaped, a moment later.
      for (let i = 0; i < 40 && processAlive(agent.swtpmPid); i += 1) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(processAlive(agent.swtpmPid)).to.equal(false);
    } finally {
      if (processAlive(agent.swtpmPid)) process.kill(agent.swtpmPid, 'SIGKILL');
    }
  });

  for (const [how, signal] of [
    ['killed outright (SIGKILL)', 'SIGKILL'],
    ['ended by a SIGHUP to its process group (its terminal closed)', 'SIGHUP'],
  ] as const) {
    it(`an agent ${how} takes its swtpm with it: no orphan holds the state's lock`, async function () {
      const agent = await startAgentProcess(dir, false);
      process.kill(signal === 'SIGKILL' ? agent.pid : -agent.pid, signal);
      await agent.exited;
      try {
        for (let i = 0; i < 60 && processAlive(agent.swtpmPid); i += 1) await new Promise((resolve) => setTimeout(resolve, 50));
        expect(processAlive(agent.swtpmPid), 'swtpm after its agent died').to.equal(false);
      } finally {
        if (processAlive(agent.swtpmPid)) process.kill(agent.swtpmPid, 'SIGKILL');
      }
    });
  }

  it('a failed TPM2_Shutdown at stop is logged at warn', async function () {
    const warnings: string[] = [];
    // Without TPM2_Startup the TPM refuses TPM2_Shutdown (TPM_RC_INITIALIZE).
    const swtpm = await startSwtpm({ stateDir: path.join(dir, 'state'), manufactureEk: false, startup: false, log: { warn: (_details, message) => warnings.push(message) } });
    await swtpm.stop();
    expect(warnings).to.deep.equal(['swtpm stop: TPM2_Shutdown failed; the next quotes will report clockInfo.safe = 0']);
  });
});
