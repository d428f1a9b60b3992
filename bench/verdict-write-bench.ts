import { generateKeyPairSync, randomBytes } from 'node:crypto';
import type { Knex } from 'knex';
import { pino } from 'pino';
import { initialAgentState } from '../lib/attestation/agent-state.js';
import type { HistoryRow } from '../lib/attestation/history-row.js';
import { OperationalState } from '../lib/attestation/operational-state.js';
import { RoundRetrier } from '../lib/verifier/round-retrier.js';
import { RoundWriter } from '../lib/verifier/round-writer.js';
import type { Benchmark } from './benchmark.js';
import { withSeededSchema } from './dashboard-bench.js';

const AGENTS = 1000;

/**
 * The pull loop's verdict write path alone, as `verifier-server.ts` builds it (`RoundRetrier` →
 * `RoundWriter` with its `audit`: the rounds locking their audit heads, then the records), against PostgreSQL: this process's CPU per stored
 * round, `perBatch` pass verdicts to a batch, through knex's transaction and through the prepared
 * path (`inPgTransaction`), alternated `repeats` times.
 */
async function timeWrites(knex: Knex, prepared: boolean, batches: number, perBatch: number, offset: number): Promise<number> {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const writer = new RoundWriter(knex, { audit: { key: { privateKey, publicKey }, actor: 'bench' }, batchDelayMs: 0, prepared });
  const health = { writeFailed: (): void => undefined, writeSettled: (): void => undefined };
  const retrier = new RoundRetrier({ rounds: { holdsRound: async () => false }, backoff: { initialDelayMs: 200, maxDelayMs: 2000 }, health, log: pino({ level: 'silent' }) });
  const state = { ...initialAgentState(OperationalState.GET_QUOTE), boottime: 1_700_000_000 };
  let count = offset;
  const batch = async (first: number): Promise<void> => {
    const rounds = Array.from({ length: perBatch }, (_, i) => {
      const agentId = `agent-${String(((first + i) % AGENTS) + 1).padStart(6, '0')}`;
      const history: HistoryRow = { outcome: 'pass', nonce: randomBytes(10).toString('hex'), imaMlEntry: 10, imaEntriesReceived: 3, failures: [] };
      count += 1;
      const write = { agentId, verifierId: 'default', owner: 'bench', leaseSeconds: 30, state: { ...state, attestationCount: count }, history };
      return retrier.store({ agentId, history, send: (roundId, retry) => writer.writeReturningOutcome({ ...write, roundId }, retry), stored: (version) => version !== undefined });
    });
    if ((await Promise.all(rounds)).includes(undefined)) throw new Error('a round was not stored');
  };
  for (let b = 0; b < 50; b += 1) await batch(b * perBatch);
  const cpu = process.cpuUsage();
  for (let b = 0; b < batches; b += 1) await batch(b * perBatch);
  const used = process.cpuUsage(cpu);
  await writer.close();
  return (used.user + used.system) / (batches * perBatch);
}

export const verdictWriteBenchmark: Benchmark = {
  name: 'verdict-write',
  description: "the pull loop's verdict write path (round writer and audit records): this process's CPU per stored round (PostgreSQL)",
  async run(args) {
    const [batches, perBatch, repeats] = [Number(args[0] ?? 400), Number(args[1] ?? 7), Number(args[2] ?? 3)];
    await withSeededSchema('verdict_write', AGENTS, 0, async (knex) => {
      let offset = 0;
      for (let r = 0; r < repeats; r += 1) {
        for (const prepared of [false, true]) {
          const us = await timeWrites(knex, prepared, batches, perBatch, offset);
          offset += (batches + 50) * perBatch;
          process.stdout.write(`${prepared ? 'prepared (inPgTransaction)' : 'knex transaction'.padEnd(26)}  ${us.toFixed(1).padStart(6)} µs CPU per round (${perBatch} per batch, ${batches} batches)\n`);
        }
      }
    });
  },
};
