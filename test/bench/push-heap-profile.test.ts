import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';

const MAIN = path.resolve(import.meta.dirname, '../../bench/main.js');

/**
 * `npm run bench -- verifier --push --heap-profile DIR`: the push verifier child is sampled over its
 * window like the pull children (the option was refused with `--push`), its profile written to
 * `DIR/push/verifier-0.heapprofile` and its bytes per push attestation printed.
 */
describe('bench verifier: --heap-profile with --push samples the push verifier', function () {
  this.timeout(300_000);

  it('writes the push window\'s heap profile and prints KiB per push attestation', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'ironlime-push-heap-'));
    try {
      // Quotes every 0.5 s, not the default 2 s: the settling before each of the two windows (pull, then
      // push) and the wait for late detections after it are counted in quote intervals, 15 s at 2 s, 7.5 s here.
      const child = spawn(process.execPath, [MAIN, 'verifier', '--agents', '2', '--seconds', '3', '--warmup', '0', '--quote-interval', '0.5', '--tamper', '0', '--push', '--heap-profile', dir], {
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      let stdout = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
      const [code] = await once(child, 'exit');
      expect(code, stdout).to.equal(0);
      const file = path.join(dir, 'push', 'verifier-0.heapprofile');
      const line = stdout.split('\n').find((text) => text.startsWith(`push heap profile ${file}: `));
      expect(line, stdout).to.match(/MiB allocated in the window, [1-9]\d* attestations, \d+\.\d KiB per push attestation$/);
      const profile = JSON.parse(await readFile(file, 'utf8')) as { head: { children: unknown[] } };
      expect(profile.head.children).to.not.be.empty;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
