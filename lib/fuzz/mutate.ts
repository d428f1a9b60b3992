import type { FuzzRandom } from './fuzz-random.js';

/**
 * Structure-blind mutations of a seed, in the spirit of AFL's havoc stage: bit flips, interesting
 * integers at random offsets (size fields are where parsers break), deletions, duplications,
 * insertions, truncation and splicing with another seed. Applied 1 to 8 times per input.
 */

/** Values that sit on the edges of 8/16/32-bit size fields, big- and little-endian alike. */
const INTERESTING: readonly number[][] = [
  [0x00], [0x01], [0x7f], [0x80], [0xff],
  [0x00, 0x00], [0xff, 0xff], [0x7f, 0xff], [0x80, 0x00], [0x00, 0x80], [0x01, 0x00], [0x00, 0x01],
  [0xff, 0xff, 0xff, 0xff], [0x7f, 0xff, 0xff, 0xff], [0x00, 0x00, 0x00, 0x00], [0x00, 0x00, 0x01, 0x00],
];

const MAX_GROWTH = 64 * 1024;

export function mutateBytes(random: FuzzRandom, seed: Uint8Array, other: Uint8Array): Uint8Array {
  let data: Uint8Array = Uint8Array.from(seed);
  const rounds = 1 + random.below(8);
  for (let round = 0; round < rounds; round += 1) {
    data = mutateOnce(random, data, other);
  }
  return data;
}

function mutateOnce(random: FuzzRandom, data: Uint8Array, other: Uint8Array): Uint8Array {
  const at = random.below(data.length + 1);
  switch (random.below(9)) {
    case 0: {
      if (data.length > 0) {
        const i = random.below(data.length);
        data[i] = (data[i] ?? 0) ^ (1 << random.below(8));
      }
      return data;
    }
    case 1: {
      const value = random.pick(INTERESTING);
      const out = Uint8Array.from(data);
      out.set(value.slice(0, Math.max(0, out.length - at)), Math.min(at, out.length));
      return out;
    }
    case 2: {
      if (data.length > 0) {
        data[random.below(data.length)] = random.u32() & 0xff;
      }
      return data;
    }
    case 3:
      return concat(data.subarray(0, at), data.subarray(Math.min(data.length, at + 1 + random.below(64))));
    case 4: {
      const length = 1 + random.below(Math.min(256, Math.max(1, data.length - at)));
      return grow(concat(data.subarray(0, at), data.subarray(at, at + length), data.subarray(at)));
    }
    case 5:
      return grow(concat(data.subarray(0, at), random.bytes(1 + random.below(16)), data.subarray(at)));
    case 6:
      return data.subarray(0, random.below(data.length + 1));
    case 7: {
      const from = random.below(other.length + 1);
      return grow(concat(data.subarray(0, at), other.subarray(from, from + random.below(512))));
    }
    default:
      return random.bytes(random.below(256));
  }
}

/** Text mutations: the byte mutations on UTF-8 plus insertion of tokens the format gives meaning to. */
export function mutateText(random: FuzzRandom, seed: string, other: string, tokens: readonly string[]): string {
  if (tokens.length > 0 && random.below(2) === 0) {
    let text = seed;
    const rounds = 1 + random.below(6);
    for (let round = 0; round < rounds; round += 1) {
      const at = random.below(text.length + 1);
      const cut = random.below(3) === 0 ? random.below(16) : 0;
      text = text.slice(0, at) + random.pick(tokens).repeat(random.below(8) === 0 ? 1 + random.below(64) : 1) + text.slice(at + cut);
    }
    return text;
  }
  return Buffer.from(mutateBytes(random, Buffer.from(seed, 'utf8'), Buffer.from(other, 'utf8'))).toString('utf8');
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

function grow(data: Uint8Array): Uint8Array {
  return data.length > MAX_GROWTH * 16 ? data.subarray(0, MAX_GROWTH * 16) : data;
}
