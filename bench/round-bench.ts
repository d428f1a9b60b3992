import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { defaultBootLogPath } from '../lib/agent/node-emulation.js';
import { akPublicKey, type AgentPolicies } from '../lib/attestation/agent-policies.js';
import { initialAgentState } from '../lib/attestation/agent-state.js';
import { BootLogMemo } from '../lib/attestation/boot-log-memo.js';
import { MeasuredBootMemo } from '../lib/attestation/mb-check-memo.js';
import { OperationalState } from '../lib/attestation/operational-state.js';
import { beginRound, decideQuoteReply, decideVDelivery, type PullDecision, type PullPosition, type PullSettings } from '../lib/attestation/pull-decision.js';
import { compileSeverityPolicy } from '../lib/attestation/severity.js';
import { parseTpmPolicy } from '../lib/attestation/tpm-policy.js';
import { compileRuntimePolicy } from '../lib/ima/compiled-policy.js';
import { createRuntimePolicy } from '../lib/ima/create-runtime-policy.js';
import { createRefstate } from '../lib/mb/create-refstate.js';
import { parseEventLog } from '../lib/mb/parse-event-log.js';
import { replayBootLog } from '../lib/tpm-access/boot-log-replayer.js';
import { ImaEmulator } from '../lib/tpm-access/ima-emulator.js';
import { createSoftwareTpm, type SoftwareTpm } from '../lib/tpm-access/software/tpm-adapter.js';
import { MEASUREDBOOT_PCRS, IMA_PCR } from '../lib/tpm/keylime-profile.js';
import { formatQuoteString } from '../lib/tpm/quote-string.js';
import { verifyQuoteSignatureAhead, type SignatureVerdict } from '../lib/tpm/signature-verdict.js';
import { ROUND_MATCH_ALLOWANCE_NS } from '../lib/verifier/round-match-allowance.js';
import type { Benchmark } from './benchmark.js';

/**
 * `npm run bench -- round [passes]`: the verifier's own judgement of a steady-state pull round, in µs
 * of process CPU per round — `beginRound` + `decideQuoteReply`, as `runPullRound` calls them, on
 * recorded replies of an in-process software TPM node: PCR 0 left out (the boot log remembered after a
 * first full round), no new IMA line, the AK signature verified ahead, before the measured loop (its cost is OpenSSL's). No
 * network, no database: the engine's share of a round only, for iterating on it.
 */

interface RecordedReply {
  readonly nonce: string;
  readonly reply: unknown;
  readonly signatureVerdict: SignatureVerdict | undefined;
}

const REPLIES = 200;
const NOW = 1_800_000_000;

export const roundBenchmark: Benchmark = {
  name: 'round',
  description: "µs of CPU per steady-state pull round in the engine (beginRound + decideQuoteReply)",
  async run(args) {
    const passes = Number(args[0] ?? '200');
    const dir = await mkdtemp(path.join(tmpdir(), 'ironlime-round-bench-'));
    const tpm = await createSoftwareTpm({ banks: ['sha256'] });
    try {
      const node = await bootedNode(tpm, dir);
      const settings: PullSettings = {
        quoteInterval: 2, retryInterval: 2, maxRetries: 2, exponentialBackoff: true,
        severity: compileSeverityPolicy(), engine: { mbMemo: new MeasuredBootMemo(), matchAllowanceNs: ROUND_MATCH_ALLOWANCE_NS }, bootLogs: new BootLogMemo(),
      };
      const agent = { agentId: 'bench', policies: node.policies, mask: node.mask };
      const round = (position: PullPosition, recorded: RecordedReply): PullDecision => {
        const request = beginRound(position, { agent, settings, now: NOW });
        if (request.kind !== 'quote') throw new Error(`round asked for ${request.kind}`);
        const decided = decideQuoteReply(request, { policies: node.policies, reply: recorded.reply, nonce: recorded.nonce, imaEntry: request.imaEntry, now: NOW, ...(recorded.signatureVerdict === undefined ? {} : { signatureVerdict: recorded.signatureVerdict }) }, settings);
        if ('repeat' in decided || decided.history?.outcome !== 'pass') throw new Error('a recorded round did not pass');
        return decided;
      };
      let first = round({ state: initialAgentState(OperationalState.GET_QUOTE), retries: 0 }, await node.reply(node.fullMask, false));
      if (first.next.kind === 'deliver_v') first = decideVDelivery({ state: first.state, retries: 0 }, undefined, first, settings);
      const start: PullPosition = { state: first.state, retries: 0 };
      const replies: RecordedReply[] = [];
      for (let i = 0; i < REPLIES; i += 1) {
        // The software TPM's clock counts milliseconds: each quote must be later than the last.
        await new Promise((resolve) => setTimeout(resolve, 2));
        replies.push(await node.reply(node.fullMask & ~1, true));
      }
      const pass = (): void => {
        let position = start;
        for (const recorded of replies) position = { state: round(position, recorded).state, retries: 0 };
      };
      for (let i = 0; i < 50; i += 1) pass();
      const before = process.cpuUsage();
      for (let i = 0; i < passes; i += 1) pass();
      const used = process.cpuUsage(before);
      const rounds = passes * REPLIES;
      process.stdout.write(`${rounds} rounds: ${((used.user + used.system) / rounds).toFixed(2)} µs of CPU per round\n`);
    } finally {
      await tpm.close();
      await rm(dir, { recursive: true, force: true });
    }
  },
};

/** A node booted with the shipped boot log and 20 IMA lines, its policies, and a way to record its replies. */
async function bootedNode(tpm: SoftwareTpm, dir: string): Promise<{
  readonly policies: AgentPolicies;
  readonly mask: string;
  readonly fullMask: number;
  reply(mask: number, partial: boolean): Promise<RecordedReply>;
}> {
  const bootLog = new Uint8Array(readFileSync(defaultBootLogPath()));
  const ak = await tpm.ensureAk('sha256');
  await replayBootLog(tpm, bootLog, { banks: ['sha256'] });
  const ima = new ImaEmulator({ tpm, logPath: path.join(dir, 'ascii_runtime_measurements'), banks: ['sha256'] });
  await ima.start();
  await ima.measure(Array.from({ length: 20 }, (_, i) => ({ path: `/usr/bin/f${i}`, content: Buffer.from(`content ${i}`) })));
  const lines = (await readFile(path.join(dir, 'ascii_runtime_measurements'), 'utf8')).split('\n').filter((line) => line !== '');
  const akKey = akPublicKey(Buffer.from(ak.akPublic).toString('base64'));
  const nkPem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
  await tpm.resetPcr(16);
  await tpm.extendPcr(16, 'sha256', new Uint8Array(createHash('sha256').update(nkPem).digest()));
  const fullMask = [...MEASUREDBOOT_PCRS, IMA_PCR].reduce((mask, pcr) => mask | (1 << pcr), 0);
  const mask = `0x${fullMask.toString(16)}`;
  const policies: AgentPolicies = {
    tpmPolicy: parseTpmPolicy({ '15': ['00'.repeat(32)], mask }),
    runtimePolicy: compileRuntimePolicy(createRuntimePolicy({ imaListText: `${lines.join('\n')}\n` }).policy),
    mbRefstate: createRefstate(parseEventLog(bootLog), { withoutSecureBoot: true }),
    measuredBootEvaluate: 'once',
    acceptTpmHashAlgs: ['sha256'],
    acceptTpmEncryptionAlgs: ['ecc'],
    acceptTpmSigningAlgs: [ak.signAlg],
    akTpm: akKey,
  };
  let count = 0;
  return {
    policies,
    mask,
    fullMask,
    async reply(pcrMask, partial) {
      const nonce = `benchnonce${String(count++).padStart(10, '0')}`;
      const pcrs = Array.from({ length: 24 }, (_, pcr) => pcr).filter((pcr) => (pcrMask & (1 << pcr)) !== 0);
      const quote = await tpm.quote({ nonce: Buffer.from(nonce, 'ascii'), pcrs: [...pcrs, 16], hashAlg: 'sha256' });
      const results = {
        quote: formatQuoteString(quote), hash_alg: 'sha256', enc_alg: 'ecc', sign_alg: ak.signAlg,
        ...(partial ? {} : { pubkey: nkPem }),
        ima_measurement_list: partial ? '' : `${lines.join('\n')}\n`,
        ima_measurement_list_entry: partial ? lines.length : 0,
        ...((pcrMask & 1) === 0 ? {} : { mb_measurement_list: Buffer.from(bootLog).toString('base64') }),
      };
      // As the verifier receives it: parsed from JSON text.
      const reply = (JSON.parse(JSON.stringify({ results })) as { results: unknown }).results;
      const signatureVerdict = verifyQuoteSignatureAhead(akKey, results.quote);
      return { nonce, reply, signatureVerdict };
    },
  };
}
