import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { expect } from 'chai';
import { startHeapProfiles, stopHeapProfiles, type VerifierProcesses } from '../../bench/verifier-processes.js';

const PROCESSES = path.resolve(import.meta.dirname, '../../bench/verifier-processes.js');
const ROUNDS = 1_000_000;

/**
 * Stands for a verifier child (`serveProfileCommands`). It first measures what one `allocate` call puts
 * on the heap with no collection in between (a young generation large enough for the whole loop, the
 * heap's used size before and after), and prints it; then, on `ALLOCATE` on its stdin, calls it ROUNDS
 * times, far past the young generation, so nearly everything the sampler sees is collected again.
 */
const CHILD = `
import { createInterface } from 'node:readline';
import v8 from 'node:v8';
const { serveProfileCommands } = await import(${JSON.stringify(PROCESSES)});
const ring = new Array(1024).fill(undefined);
const allocate = (i) => { ring[i & 1023] = [i, i, i, i, i, i, i, i, i, i, i, i, i, i]; };
const calls = 100_000;
globalThis.gc();
const before = v8.getHeapStatistics().used_heap_size;
for (let i = 0; i < calls; i += 1) allocate(i);
const each = (v8.getHeapStatistics().used_heap_size - before) / calls;
serveProfileCommands();
process.stdout.write('EACH ' + each + '\\n');
createInterface({ input: process.stdin }).on('line', (line) => {
  if (line !== 'ALLOCATE') return;
  for (let i = 0; i < ${ROUNDS}; i += 1) allocate(i);
  process.stdout.write('ALLOCATED\\n');
});
`;

/**
 * `npm run bench -- verifier --heap-profile DIR`: the bytes per round it prints come from the sum of the
 * sampling heap profile's sizes. Without V8's flags that keep the samples of collected objects, that sum
 * is what was still alive at the end (a few hundred KB here), not what was allocated.
 */
describe('bench verifier: --heap-profile counts what the window allocated', function () {
  this.timeout(120_000);

  it("estimates the bytes of a million short-lived arrays within 10 % of the heap's own count", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'ironlime-heap-profile-'));
    const child = spawn(process.execPath, ['--expose-gc', '--min-semi-space-size=64', '--max-semi-space-size=64', '--input-type=module', '-e', CHILD], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    try {
      const lines = createInterface({ input: child.stdout });
      const next = (prefix: string): Promise<string> =>
        new Promise((resolve) => {
          const onLine = (line: string): void => {
            if (!line.startsWith(prefix)) return;
            lines.off('line', onLine);
            resolve(line.slice(prefix.length));
          };
          lines.on('line', onLine);
        });
      const each = Number(await next('EACH '));
      expect(each).to.be.greaterThan(50);
      const processes: VerifierProcesses = { url: '', urls: [], children: [child], lines: [lines], limits: [], heapProfilers: [true] };
      await startHeapProfiles(processes);
      const allocated = next('ALLOCATED');
      child.stdin.write('ALLOCATE\n');
      await allocated;
      const [bytes] = await stopHeapProfiles(processes, dir);
      expect((bytes ?? 0) / ROUNDS).to.be.within(0.9 * each, 1.1 * each);
      const profile = JSON.parse(await readFile(path.join(dir, 'verifier-0.heapprofile'), 'utf8')) as { head: { children: unknown[] } };
      expect(profile.head.children).to.not.be.empty;
    } finally {
      child.stdin.end();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
