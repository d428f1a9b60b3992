import { createHash } from 'node:crypto';
import { expect } from 'chai';
import * as ev from '../../lib/mb/internal/event-types.js';
import { hashAlgorithmByName, type HashAlgorithm } from '../../lib/mb/internal/hash-algorithms.js';
import { digestBindsData } from '../../lib/mb/internal/verified-event-log.js';

/**
 * Which event data a digest binds (`VerifiedEvent.verifiedContent`): the data, the data without its
 * trailing NULs, or for an EV_IPL GRUB string the text after its prefix, with or without the NULs.
 * `digestBindsData` hashes these one at a time, stopping at the first that matches, and reads the
 * GRUB prefix from the bytes; the rules below are the eager list of preimages it replaced, every one
 * hashed with a Hash object, so both must answer alike on every case.
 */

const SHA256 = hashAlgorithmByName('sha256') as HashAlgorithm;
const SHA384 = hashAlgorithmByName('sha384') as HashAlgorithm;
const SHA1 = hashAlgorithmByName('sha1') as HashAlgorithm;
const PREFIXES = ['grub_cmd: ', 'kernel_cmdline: ', 'module_cmdline: ', 'grub_cmd ', 'grub_kernel_cmdline '];

function h(alg: HashAlgorithm, data: Uint8Array | string): Uint8Array {
  return new Uint8Array(createHash(alg.nodeName as string).update(data).digest());
}

/** The rule as first written: every preimage built, then hashed. */
function boundByRule(alg: HashAlgorithm, type: number, data: Uint8Array, digest: Uint8Array): boolean {
  let end = data.length;
  while (end > 0 && data[end - 1] === 0) end--;
  const trimmed = data.subarray(0, end);
  const candidates = [data, trimmed];
  const text = Buffer.from(trimmed).toString('latin1');
  const prefix = PREFIXES.find((p) => text.startsWith(p));
  if (type === ev.EV_IPL && prefix !== undefined) candidates.push(trimmed.subarray(prefix.length), data.subarray(prefix.length));
  return candidates.some((c) => Buffer.from(h(alg, c)).equals(Buffer.from(digest)));
}

function bytes(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, 'latin1'));
}

describe('digestBindsData: which event data a digest binds', () => {
  it('binds the data as logged and the data without its trailing NULs, in any bank', () => {
    for (const alg of [SHA1, SHA256, SHA384]) {
      const withNul = bytes('Calling EFI Application from Boot Option\0\0');
      expect(digestBindsData(alg, ev.EV_EFI_ACTION, withNul, h(alg, withNul)), alg.name).to.equal(true);
      expect(digestBindsData(alg, ev.EV_EFI_ACTION, withNul, h(alg, 'Calling EFI Application from Boot Option')), alg.name).to.equal(true);
      expect(digestBindsData(alg, ev.EV_EFI_ACTION, withNul, h(alg, 'Calling EFI Application from Boot Option\0')), alg.name).to.equal(false);
      expect(digestBindsData(alg, ev.EV_EFI_ACTION, withNul, h(alg, 'something else')), alg.name).to.equal(false);
    }
  });

  it('binds an EV_IPL GRUB string by the text after each of its prefixes, with or without its NUL, and no other type so', () => {
    for (const prefix of PREFIXES) {
      const body = '/vmlinuz-6.1 root=/dev/sda1 ro';
      const logged = bytes(`${prefix}${body}\0`);
      expect(digestBindsData(SHA256, ev.EV_IPL, logged, h(SHA256, body)), prefix).to.equal(true);
      expect(digestBindsData(SHA256, ev.EV_IPL, logged, h(SHA256, `${body}\0`)), prefix).to.equal(true);
      expect(digestBindsData(SHA256, ev.EV_IPL, bytes(`${prefix}${body}`), h(SHA256, body)), prefix).to.equal(true);
      expect(digestBindsData(SHA256, ev.EV_EFI_ACTION, logged, h(SHA256, body)), prefix).to.equal(false);
      expect(digestBindsData(SHA256, ev.EV_IPL, bytes(`x${prefix}${body}\0`), h(SHA256, body)), prefix).to.equal(false);
    }
  });

  it('answers as the eager rule on edge cases: empty, all NULs, a bare prefix, a prefix cut short, a digest of another length', () => {
    const datas = ['', '\0', '\0\0\0', 'grub_cmd: ', 'grub_cmd: \0', 'grub_cmd:', 'grub_cmd', 'kernel_cmdline: \0\0', 'grub_kernel_cmdline x', 'a\0b\0'];
    for (const text of datas) {
      const data = bytes(text);
      const digests = [h(SHA256, ''), h(SHA256, data), h(SHA256, text.replace(/\0+$/, '')), h(SHA1, data), new Uint8Array(0), h(SHA256, 'x')];
      for (const prefix of PREFIXES) digests.push(h(SHA256, text.slice(prefix.length)), h(SHA256, text.replace(/\0+$/, '').slice(prefix.length)));
      for (const type of [ev.EV_IPL, ev.EV_EFI_ACTION]) {
        for (const digest of digests) {
          expect(digestBindsData(SHA256, type, data, digest), JSON.stringify(text)).to.equal(boundByRule(SHA256, type, data, digest));
        }
      }
    }
  });
});
