import { X509Certificate } from 'node:crypto';
import { expect } from 'chai';
import { certificatesDer, certStoreFromFolder } from '../../lib/tpm/cert-store.js';
import { SoftwareEkCa } from '../../lib/tpm-access/software/ek-certificate.js';

const BEGIN = '-----BEGIN CERTIFICATE-----';
const END = '-----END CERTIFICATE-----';

/** DER-looking bytes (SEQUENCE tag first) of `length`, filled with BEGIN markers and no END. */
function derWithMarkers(length: number): Uint8Array {
  const der = Buffer.alloc(length, 0x41);
  der[0] = 0x30;
  der[1] = 0x83;
  Buffer.from(BEGIN.repeat(Math.floor((length - 1) / BEGIN.length)), 'latin1').copy(der, 1);
  return new Uint8Array(der);
}

/** PEM-looking text: one BEGIN line, then `count` more BEGIN markers and never an END line. */
function pemWithMarkers(count: number): string {
  return `${BEGIN}\n${BEGIN.repeat(count)}`;
}

/** The fastest of seven runs: a scan's own cost, without the collector's or another process's time on a busy host. */
function fastestMs(run: () => void): number {
  let fastest = Infinity;
  for (let i = 0; i < 7; i += 1) {
    const start = process.hrtime.bigint();
    try {
      run();
    } catch {
      // refused or not: only the cost matters here
    }
    fastest = Math.min(fastest, Number(process.hrtime.bigint() - start) / 1e6);
  }
  return fastest;
}

/**
 * certificatesDer reads the EK certificate an unauthenticated agent sends at registration, so its cost
 * must grow linearly with the input: a lazy regex rescanned to the end from every BEGIN marker that
 * has no END line, which made 4x the markers cost about 16x.
 */
describe('certificatesDer: scanning certificate input', function () {
  this.timeout(60_000);

  for (const [what, small, large] of [
    ['DER bytes', derWithMarkers(192 * 1024), derWithMarkers(768 * 1024)],
    ['PEM text', pemWithMarkers(8_000), pemWithMarkers(32_000)],
  ] as const) {
    it(`costs about 4x, not 16x, for 4x the BEGIN markers in ${what}`, function () {
      // Warmed up first, and inputs large enough that the small one takes milliseconds: a 0.36 ms first
      // measurement once made a linear 7.2 ms look like 20x on a busy machine. Up to three tries, each the
      // fastest of seven runs: a busy CI host once made a linear scan's median read 17x, while the old
      // regex's growth (10x to 18x, 16x per 4x) shows in every try.
      fastestMs(() => certificatesDer(small));
      fastestMs(() => certificatesDer(large));
      const tries: string[] = [];
      for (let attempt = 0; attempt < 3; attempt += 1) {
        const smallMs = fastestMs(() => certificatesDer(small));
        const largeMs = fastestMs(() => certificatesDer(large));
        tries.push(`${smallMs.toFixed(2)} ms then ${largeMs.toFixed(2)} ms`);
        // A linear scan is ~4x.
        if (largeMs < smallMs * 8 + 5) return;
      }
      expect.fail(`grew more than 8x for 4x the input in every try: ${tries.join('; ')}`);
    });
  }

  it('reads DER bytes as DER even when they hold PEM BEGIN and END lines', function () {
    const ca = SoftwareEkCa.create({ commonName: `${BEGIN}QUJD${END}` });
    const der = new Uint8Array(new X509Certificate(ca.certificatePem).raw);
    expect(Buffer.from(der).toString('latin1')).to.include(`${BEGIN}QUJD${END}`);
    expect(certificatesDer(der)).to.deep.equal([der]);
  });

  it('loads a DER file of an EK CA folder as DER when its names hold a PEM BEGIN line', function () {
    const ca = SoftwareEkCa.create({ commonName: '-----BEGIN RSA PRIVATE KEY-----' });
    const der = new Uint8Array(new X509Certificate(ca.certificatePem).raw);
    const store = certStoreFromFolder('ek-ca', [{ name: 'ca.der', data: der }]);
    expect(store.entries.map((e) => e.name)).to.deep.equal(['ca.der']);
    expect(store.skipped).to.deep.equal([]);
  });

  it('still reads every block of PEM text, with explanatory text before and between blocks', function () {
    const certs = [SoftwareEkCa.create({ commonName: 'first' }), SoftwareEkCa.create({ commonName: 'second' })];
    const text = `Certificate:\n    Subject: first\n${certs[0]?.certificatePem}\nsubject=second\n${certs[1]?.certificatePem}`;
    const names = certificatesDer(Buffer.from(text, 'latin1')).map((der) => new X509Certificate(der).subject);
    expect(names).to.deep.equal(['CN=first\nO=ironlime', 'CN=second\nO=ironlime']);
  });

  it('reads PEM text as PEM when its explanatory text starts with the character 0 (the DER tag byte)', function () {
    const ca = SoftwareEkCa.create({ commonName: 'zero' });
    const text = `0: first certificate of the chain\n${ca.certificatePem}`;
    const der = new Uint8Array(new X509Certificate(ca.certificatePem).raw);
    expect(certificatesDer(Buffer.from(text, 'latin1'))).to.deep.equal([der]);
  });

  it('refuses PEM text whose last block has no END line, and a block body that is not base64', function () {
    const pem = SoftwareEkCa.create().certificatePem;
    expect(() => certificatesDer(`${pem}${BEGIN}\nAAAA\n`)).to.throw(/PEM CERTIFICATE block without END line/);
    expect(() => certificatesDer(`${BEGIN}\n${BEGIN}\n${END}\n`)).to.throw(/PEM block is not base64/);
    expect(() => certificatesDer(pemWithMarkers(3))).to.throw(/PEM CERTIFICATE block without END line/);
  });
});
