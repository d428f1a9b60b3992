import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { expect } from 'chai';
import { stopProfiles, type VerifierProcesses } from '../../bench/verifier-processes.js';

/**
 * `npm run bench -- verifier --profile DIR`: Ctrl-C reaches the verifier children too. One that ended
 * before answering `PROFILE STOP` left the benchmark waiting for its answer for good, before its
 * teardown (schema, data dir).
 */
describe('bench verifier: stopping the profiles of a verifier process that has ended', function () {
  it('rejects instead of waiting for an answer that cannot come', async function () {
    // Stands for a verifier child: reads its stdin and never answers, then is ended as by Ctrl-C.
    const child = spawn(process.execPath, ['-e', 'process.stdin.resume()'], { stdio: ['pipe', 'pipe', 'inherit'] });
    const lines = createInterface({ input: child.stdout });
    const processes: VerifierProcesses = { url: '', urls: [], children: [child], lines: [lines], limits: [], heapProfilers: [false] };
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGINT');
    const stopped = stopProfiles(processes, '/nonexistent');
    await exited;
    let failure: unknown;
    await stopped.catch((error: unknown) => (failure = error));
    expect(String(failure)).to.include('verifier process 0 ended before writing its profile');
  });

  it('rejects for a child that had already ended', async function () {
    const child = spawn(process.execPath, ['-e', ''], { stdio: ['pipe', 'pipe', 'inherit'] });
    const lines = createInterface({ input: child.stdout });
    await new Promise((resolve) => child.once('exit', resolve));
    const processes: VerifierProcesses = { url: '', urls: [], children: [child], lines: [lines], limits: [], heapProfilers: [false] };
    let failure: unknown;
    await stopProfiles(processes, '/nonexistent').catch((error: unknown) => (failure = error));
    expect(String(failure)).to.include('verifier process 0 ended before writing its profile');
  });
});
