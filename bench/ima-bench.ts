import { createHash, hash } from 'node:crypto';
import { compileRuntimePolicy } from '../lib/ima/compiled-policy.js';
import { initialImaReplayState } from '../lib/ima/ima-replay-state.js';
import { emptyRuntimePolicy, parseRuntimePolicy, type RuntimePolicy } from '../lib/ima/runtime-policy.js';
import { verifyImaList } from '../lib/ima/verify-ima-list.js';
import type { Benchmark } from './benchmark.js';

/**
 * `npm run bench -- ima [entries]`: the cost of checking an IMA measurement list per entry, next to
 * the cost of the hashes a check must do, measured in the same run:
 *
 * - floor: per entry, the 2 hashes the check makes for a line the quote binds: SHA-256 of the
 *   template data and the extend `H(PCR ‖ digest)` in the quoted bank (sha256), as one-shot
 *   node:crypto calls in their cheapest form, on template data prepared in advance;
 * - the 3-hash floor: those and SHA-1 of the template data, for a line held to its logged template
 *   hash (every line before a bound line was spared it), for comparison with earlier figures;
 * - the former floor: the four hashes a replay of both banks with the SHA-1 template hash checked
 *   needed (SHA-1 and SHA-256 of the template data, both extends), the same way, and those four
 *   returning Buffers, for comparison with earlier figures;
 * - full: `verifyImaList` on the ASCII text with a sha256 quote covering every line: parse every
 *   line, rebuild the template data, extend the quoted bank, look the path and digest up in a
 *   policy listing every file (with a few exclude rules), and match the quoted PCR 10 (the quote
 *   binds every line: none is held to its logged SHA-1 template hash);
 * - incremental: a round of 100 new entries on top of the state left by the full check.
 *
 * Times are CPU time of this process (process.cpuUsage). Target: a first round ≤ 1.5 µs per entry;
 * the ratio to the floor says how much is left above node:crypto's own cost.
 */

export interface GeneratedList {
  readonly text: string;
  readonly templateData: Buffer[];
  /** The policy as JSON-ready data (listing every path, three excludes), and compiled. */
  readonly policyData: RuntimePolicy;
  readonly policy: ReturnType<typeof compileRuntimePolicy>;
}

function u32(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(value);
  return b;
}

/** An ima-ng list of `count` entries (boot_aggregate, then files with sha256 digests) and a policy for it. */
export function generate(count: number): GeneratedList {
  const lines: string[] = [];
  const templateData: Buffer[] = [];
  const policy = emptyRuntimePolicy();
  policy.excludes = ['/tmp/', '/var/log/.*\\.log$', '/proc/'];
  for (let i = 0; i < count; i++) {
    const path = i === 0 ? 'boot_aggregate' : `/usr/lib/x86_64-linux-gnu/pkg${i % 997}/lib${i}.so.${i % 7}`;
    const digest = createHash('sha256').update(`content ${i}`).digest();
    const name = Buffer.from(path, 'utf8');
    const data = Buffer.concat([u32(6 + 2 + 32), Buffer.from('sha256:\0', 'latin1'), digest, u32(name.length + 1), name, Buffer.alloc(1)]);
    templateData.push(data);
    lines.push(`10 ${createHash('sha1').update(data).digest('hex')} ima-ng sha256:${digest.toString('hex')} ${path}`);
    policy.digests[path] = [digest.toString('hex')];
  }
  return { text: `${lines.join('\n')}\n`, templateData, policyData: policy, policy: compileRuntimePolicy(parseRuntimePolicy(policy)) };
}

/**
 * A floor: per entry, for each bank, the bank's hash of the template data and the extend, plus (with
 * `logged`) the SHA-1 of the template data when no replayed bank gives it (the logged template hash's), as
 * node:crypto one-shot calls in their cheapest form — latin1 results (`'binary'`: a short string,
 * no Buffer to allocate) written into a `PCR ‖ digest` buffer — on template data prepared in
 * advance: no parsing, no checks.
 */
function floorHashes(templateData: readonly Buffer[], banks: ReadonlyArray<'sha1' | 'sha256'>, logged: boolean): string {
  const replays = banks.map((bank) => {
    const size = bank === 'sha1' ? 20 : 32;
    const scratch = Buffer.alloc(2 * size);
    return { bank, size, scratch, pcr: scratch.toString('latin1', 0, size) };
  });
  const loggedSeparately = logged && !banks.includes('sha1');
  let loggedHash = '';
  for (const data of templateData) {
    if (loggedSeparately) {
      loggedHash = hash('sha1', data, 'binary');
    }
    for (const replay of replays) {
      replay.scratch.write(replay.pcr, 0, 'latin1');
      replay.scratch.write(hash(replay.bank, data, 'binary'), replay.size, 'latin1');
      replay.pcr = hash(replay.bank, replay.scratch, 'binary');
    }
  }
  return replays.map((replay) => replay.pcr).join('') + loggedHash;
}

/** The same four hashes returning Buffers, as a replay written the obvious way does them. */
function bufferHashes(templateData: readonly Buffer[]): string {
  const scratch1 = Buffer.alloc(40);
  const scratch256 = Buffer.alloc(64);
  for (const data of templateData) {
    hash('sha1', data, 'buffer').copy(scratch1, 20);
    hash('sha1', scratch1, 'buffer').copy(scratch1, 0);
    hash('sha256', data, 'buffer').copy(scratch256, 32);
    hash('sha256', scratch256, 'buffer').copy(scratch256, 0);
  }
  return scratch1.subarray(0, 20).toString('hex');
}

/**
 * Median CPU time (µs, user + system of this process: other processes on a shared machine do not
 * count) of each piece of work over `runs` rounds. The pieces run interleaved, round after round,
 * so that a change of machine load affects them alike and their ratio stays fair.
 */
function interleavedMedians(runs: number, works: ReadonlyArray<() => void>): number[] {
  const times = works.map((): number[] => []);
  for (let i = 0; i < runs; i++) {
    works.forEach((work, index) => {
      const start = process.cpuUsage();
      work();
      const used = process.cpuUsage(start);
      times[index]?.push(used.user + used.system);
    });
  }
  return times.map((list) => {
    list.sort((a, b) => a - b);
    return list[Math.floor(list.length / 2)] ?? 0;
  });
}

export const imaBenchmark: Benchmark = {
  name: 'ima',
  description: 'IMA list check per entry (50,000 ima-ng entries, policy, sha256 quote) vs the floor of its 2 one-shot hashes (3 for a line held to its logged hash)',
  async run(args) {
    const count = Number(args[0] ?? 50_000);
    const increment = 100;
    const list = generate(count + increment);
    const lines = list.text.split('\n');
    const fullText = `${lines.slice(0, count).join('\n')}\n`;
    const newText = `${lines.slice(count, count + increment).join('\n')}\n`;
    const data = list.templateData.slice(0, count);
    const quoted = { bank: 'sha256' as const, value: verifyImaList({ listText: fullText }).pcr10.sha256 ?? '' };
    const finalQuoted = { bank: 'sha256' as const, value: verifyImaList({ listText: list.text }).pcr10.sha256 ?? '' };

    let state = initialImaReplayState();
    const full = (): void => {
      const result = verifyImaList({ listText: fullText, startEntry: 0, policy: list.policy, quotedPcr10: quoted });
      if (!result.valid) {
        throw new Error(`benchmark list failed: ${JSON.stringify(result.failures[0])}`);
      }
      state = result.nextState;
    };
    const incremental = (): void => {
      const result = verifyImaList({ listText: newText, state, policy: list.policy, quotedPcr10: finalQuoted });
      if (!result.valid || result.matchedEntries !== increment) {
        throw new Error('benchmark increment failed');
      }
    };
    const floor = (): void => {
      floorHashes(data, ['sha256'], false);
    };
    const threeHashFloor = (): void => {
      floorHashes(data, ['sha256'], true);
    };
    const formerFloor = (): void => {
      floorHashes(data, ['sha1', 'sha256'], true);
    };
    const buffers = (): void => {
      bufferHashes(data);
    };

    for (let i = 0; i < 2; i++) {
      floor();
      threeHashFloor();
      formerFloor();
      full();
    }
    const perEntry = interleavedMedians(9, [floor, threeHashFloor, formerFloor, full]).map((total) => total / count);
    const [floorUs = 0, threeHashFloorUs = 0, formerFloorUs = 0, fullUs = 0] = perEntry;
    const [roundUs = 0] = interleavedMedians(51, [incremental]);
    // Measured apart, after the others: the 200,000 Buffers of a run leave their backing stores for
    // V8's background threads to free while the next piece of work runs, and process.cpuUsage
    // charges that to it (interleaved, the first round measured 0.3-0.4 µs/entry more).
    const [buffersUs = 0] = interleavedMedians(9, [buffers]).map((total) => total / count);
    const lines_ = [
      `entries: ${count} ima-ng (sha256 file digests), policy of ${count + increment} paths and 3 excludes; CPU time, medians of 9 interleaved runs (the Buffer variant measured after them)`,
      `floor, the 2 hashes of an entry the quote binds (SHA-256 of the template data and the extend in the quoted sha256 bank) as one-shot node:crypto calls returning latin1 strings: ${floorUs.toFixed(2)} µs CPU/entry`,
      `3-hash floor (and SHA-1 of the template data, for a line held to its logged hash) the same way: ${threeHashFloorUs.toFixed(2)} µs CPU/entry`,
      `former floor, 4 hashes (SHA-1 template hash, both banks) the same way: ${formerFloorUs.toFixed(2)} µs CPU/entry; returning Buffers: ${buffersUs.toFixed(2)}`,
      `first round (parse, template data, sha256 bank, policy, PCR match): ${fullUs.toFixed(2)} µs CPU/entry = ${(fullUs / floorUs).toFixed(2)}× floor, ${(fullUs / threeHashFloorUs).toFixed(2)}× 3-hash floor (target ≤ 1.5 µs/entry)`,
      `incremental round of ${increment} new entries: ${roundUs.toFixed(0)} µs CPU/round = ${(roundUs / increment).toFixed(2)} µs/entry`,
    ];
    process.stdout.write(`${lines_.join('\n')}\n`);
  },
};
