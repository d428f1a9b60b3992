import { AsyncLocalStorage } from 'node:async_hooks';
import { webcrypto } from 'node:crypto';
import { loadavg } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

/**
 * `node dist/bench/broker-jwe-micro.js [answers] [in flight] [rounds] [other dist folder …]`
 * (defaults 3000, 16, 4): the resource answer alone (`encryptResource` to a P-256 tee-pubkey, the
 * bench client's kind, with the key taken from `TeeKeyCache` as a fetch does), no HTTP and no database.
 * Each build (this one, then every other `dist` given, e.g. main's built in a scratch folder) and each
 * promise-hook setting — off, and on as after `withoutStatementBound` (an `AsyncLocalStorage` in use
 * installs Node 20's promise hooks for the whole process) — runs once per round, in turn, in this one
 * process, so all of them see the same load. Printed: CPU per answer (user + system of every thread:
 * the WebCrypto jobs on libuv's pool included), each round's figures and then each variant's median.
 */
interface Build {
  readonly name: string;
  readonly encrypt: (plaintext: Uint8Array) => Promise<unknown>;
}

const [answersText, inFlightText, roundsText, ...others] = process.argv.slice(2);
const answers = Number(answersText ?? '3000');
const inFlight = Number(inFlightText ?? '16');
const rounds = Number(roundsText ?? '4');

async function loadBuild(dist: string): Promise<Build> {
  const url = (file: string): string => pathToFileURL(path.join(dist, 'lib/broker', file)).href;
  const jwe = (await import(url('resource-jwe.js'))) as typeof import('../lib/broker/resource-jwe.js');
  const keys = (await import(url('tee-public-key.js'))) as typeof import('../lib/broker/tee-public-key.js');
  const pair = await webcrypto.subtle.generateKey({ name: 'ECDH', namedCurve: 'P-256' }, true, ['deriveBits']);
  const { kty, crv, x, y } = await webcrypto.subtle.exportKey('jwk', pair.publicKey);
  const stored = JSON.stringify({ kty, crv, x, y, alg: 'ECDH-ES+A256KW' });
  const cache = new keys.TeeKeyCache();
  return { name: dist, encrypt: async (plaintext) => jwe.encryptResource(plaintext, await cache.parseText(stored)) };
}

/** CPU microseconds per answer over `count` answers, `inFlight` at a time. */
async function cpuPerAnswer(build: Build, count: number): Promise<number> {
  const plaintext = new Uint8Array(32);
  let started = 0;
  const before = process.cpuUsage();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (started < count) {
        started += 1;
        await build.encrypt(plaintext);
      }
    }),
  );
  const used = process.cpuUsage(before);
  return (used.user + used.system) / count;
}

const ownDist = path.resolve(import.meta.dirname, '..');
const builds = [await loadBuild(ownDist), ...(await Promise.all(others.map((dist) => loadBuild(path.resolve(dist)))))];
const storage = new AsyncLocalStorage<true>();
const results = new Map<string, number[]>();
process.stdout.write(`broker-jwe-micro: ${answers} answers x ${inFlight} in flight, ${rounds} rounds; load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}\n`);
for (const build of builds) {
  await cpuPerAnswer(build, 1000); // warm-up: compiled code, filled key pools
}
for (let round = 1; round <= rounds; round += 1) {
  for (const hooks of [false, true]) {
    for (const build of builds) {
      if (hooks) {
        storage.enterWith(true);
      } else {
        storage.disable();
      }
      const us = await cpuPerAnswer(build, answers);
      storage.disable();
      const label = `${build.name} promise hooks ${hooks ? 'on' : 'off'}`;
      results.set(label, [...(results.get(label) ?? []), us]);
      process.stdout.write(`round ${round}: ${label}: ${us.toFixed(0)} us CPU per answer\n`);
    }
  }
}
function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length / 2;
  return Number.isInteger(middle) ? ((sorted[middle - 1] ?? NaN) + (sorted[middle] ?? NaN)) / 2 : (sorted[Math.floor(middle)] ?? NaN);
}
for (const [label, values] of results) {
  process.stdout.write(`median ${label}: ${median(values).toFixed(0)} us (${values.map((v) => v.toFixed(0)).join(', ')})\n`);
}
// Ratios within a round (its variants ran one after the other) vary less with the load than the figures.
const ratio = (of: string, to: string): string => {
  const [a, b] = [results.get(of) ?? [], results.get(to) ?? []];
  return median(a.map((value, index) => value / (b[index] ?? NaN))).toFixed(3);
};
for (const build of builds) {
  process.stdout.write(`${build.name}: promise hooks on / off, median of the rounds' ratios ${ratio(`${build.name} promise hooks on`, `${build.name} promise hooks off`)}\n`);
}
for (const build of builds.slice(1)) {
  process.stdout.write(`this build / ${build.name}, hooks off: median of the rounds' ratios ${ratio(`${builds[0]?.name} promise hooks off`, `${build.name} promise hooks off`)}\n`);
}
process.stdout.write(`load average after: ${loadavg().map((l) => l.toFixed(1)).join(' ')}\n`);
