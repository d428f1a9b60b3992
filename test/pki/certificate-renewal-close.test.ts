import { mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { CertificateRenewal } from '../../lib/pki/certificate-renewal.js';
import { caDirOf, loadOrCreateServiceTls } from '../../lib/pki/service-tls.js';

describe('pki: closing a service while its renewal waits for another process issuing the same certificate', function () {
  this.timeout(60_000);
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'ironlime-renewal-close-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('returns at once instead of waiting up to 45 s for that lock, and logs no failed renewal', async () => {
    // Lives 3 s with a 4 s margin: due at every look (a look each second).
    const timing = { validityMs: 3000, renewMarginMs: 4000 };
    const initial = await loadOrCreateServiceTls({ dataDir: dir, serviceName: 'verifier', ...timing });
    // Another live process issuing `verifier`: its lock is kept fresh, so it is never taken for stale.
    const lock = path.join(caDirOf(dir), 'verifier.lock');
    await writeFile(lock, 'another process');
    const touch = setInterval(() => {
      const now = new Date();
      utimes(lock, now, now).catch(() => undefined);
    }, 1000);
    const warnings: string[] = [];
    const renewal = new CertificateRenewal({
      dataDir: dir,
      ...timing,
      certificates: [{ serviceName: 'verifier', type: 'server', initial, use: () => undefined }],
      log: { info: () => undefined, warn: (_details, message) => warnings.push(message) },
    });
    try {
      renewal.start();
      // The first look (after 1 s) is now waiting on the lock.
      await sleep(2500);
      const closing = performance.now();
      await renewal.close();
      expect(performance.now() - closing, 'close waited for the other process').to.be.lessThan(10_000);
      expect(warnings).to.deep.equal([]);
    } finally {
      clearInterval(touch);
      await renewal.close();
    }
  });
});
