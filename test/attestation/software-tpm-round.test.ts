import { expect } from 'chai';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { akPublicKey, type AgentPolicies } from '../../lib/attestation/agent-policies.js';
import { initialAgentState, type AgentAttestationState } from '../../lib/attestation/agent-state.js';
import { evaluateQuote } from '../../lib/attestation/internal/evaluate-quote.js';
import { OperationalState } from '../../lib/attestation/operational-state.js';
import type { AgentQuoteReply } from '../../lib/attestation/internal/quote-reply.js';
import { createRefstate } from '../../lib/mb/create-refstate.js';
import { parseEventLog } from '../../lib/mb/parse-event-log.js';
import { replayBootLog } from '../../lib/tpm-access/boot-log-replayer.js';
import { ImaEmulator } from '../../lib/tpm-access/ima-emulator.js';
import { createSoftwareTpm, type SoftwareTpm } from '../../lib/tpm-access/software/tpm-adapter.js';
import type { AkInfo } from '../../lib/tpm-access/tpm-port.js';
import { formatQuoteString } from '../../lib/tpm/quote-string.js';
import { vectorPath } from '../helpers/paths.js';
import { runtimePolicyFor } from './engine-fixtures.js';

const BOOT_LOG = new Uint8Array(readFileSync(vectorPath('rust-keylime', 'uefi_log.bin')));
const QUOTED = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 14];

/**
 * The node side built from the project's own pieces — software TPM, boot-log replayer, IMA emulator —
 * answering like the Rust agent (spec §3.3): PCR 16 reset and extended with H(NK PEM), then a quote
 * over the requested PCRs plus 16.
 */
describe('evaluateQuote against the in-process software TPM node', () => {
  let tpm: SoftwareTpm;
  let ak: AkInfo;
  let ima: ImaEmulator;
  let dir: string;
  const nkPem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'ironlime-engine-'));
    tpm = await createSoftwareTpm({ banks: ['sha256'] });
    ak = await tpm.ensureAk('sha256');
    await replayBootLog(tpm, BOOT_LOG, { banks: ['sha256'] });
    ima = new ImaEmulator({ tpm, logPath: path.join(dir, 'ascii_runtime_measurements'), banks: ['sha256'] });
    await ima.start();
    await ima.measure([{ path: '/usr/bin/bash', content: Buffer.from('bash') }]);
  });

  after(async () => {
    await tpm.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function reply(nonce: string, entry: number, partial: boolean): Promise<AgentQuoteReply> {
    await tpm.resetPcr(16);
    await tpm.extendPcr(16, 'sha256', new Uint8Array(createHash('sha256').update(nkPem).digest()));
    const quote = await tpm.quote({ nonce: Buffer.from(nonce, 'ascii'), pcrs: [...QUOTED, 16], hashAlg: 'sha256' });
    const lines = (await readFile(path.join(dir, 'ascii_runtime_measurements'), 'utf8')).split('\n').filter((l) => l !== '');
    return {
      quote: formatQuoteString(quote),
      hash_alg: 'sha256',
      enc_alg: 'rsa2048',
      sign_alg: ak.signAlg,
      ...(partial ? {} : { pubkey: nkPem }),
      ima_measurement_list: lines.slice(entry).map((l) => `${l}\n`).join(''),
      ima_measurement_list_entry: entry,
      mb_measurement_list: Buffer.from(BOOT_LOG).toString('base64'),
    };
  }

  it('passes two rounds (full, then incremental) and fails a file outside the policy', async () => {
    const lines = async (): Promise<string[]> => (await readFile(path.join(dir, 'ascii_runtime_measurements'), 'utf8')).split('\n').filter((l) => l !== '');
    const lsDigest = createHash('sha256').update('ls').digest('hex');
    const policies: AgentPolicies = {
      tpmPolicy: { mask: '0x4007ff' },
      runtimePolicy: runtimePolicyFor([...(await lines()), `10 00 ima-ng sha256:${lsDigest} /usr/bin/ls`]),
      mbRefstate: createRefstate(parseEventLog(BOOT_LOG), { withoutSecureBoot: true }),
      measuredBootEvaluate: 'once',
      acceptTpmHashAlgs: ['sha256'],
      acceptTpmEncryptionAlgs: ['rsa'],
      acceptTpmSigningAlgs: [ak.signAlg],
      akTpm: akPublicKey(Buffer.from(ak.akPublic).toString('base64')),
    };
    let state: AgentAttestationState = { ...initialAgentState(), operationalState: OperationalState.GET_QUOTE };

    const first = evaluateQuote({ state, policies, reply: await reply('firstRoundNonce00001', 0, false), nonce: 'firstRoundNonce00001', now: 1 });
    expect(first.failures).to.deep.equal([]);
    expect(first.claims.measuredBoot).to.deep.equal({ replayedPcrs: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 14], policy: 'example' });
    state = first.nextState;
    expect(state.ima.nextEntry).to.equal(2);

    await ima.measure([{ path: '/usr/bin/ls', content: Buffer.from('ls') }]);
    const second = evaluateQuote({ state, policies, reply: await reply('secondRoundNonce0002', 2, true), nonce: 'secondRoundNonce0002', now: 2 });
    expect(second.failures).to.deep.equal([]);
    expect(second.claims.ima).to.deep.equal({ firstEntry: 2, entriesChecked: 1, entriesVerified: 1, nextEntry: 3 });
    expect(BigInt(second.nextState.tpmClockInfo?.clock ?? '0') > BigInt(state.tpmClockInfo?.clock ?? '0')).to.equal(true);
    state = second.nextState;

    await ima.measure([{ path: '/usr/sbin/sshd-backdoor', content: Buffer.from('evil') }]);
    const third = evaluateQuote({ state, policies, reply: await reply('thirdRoundNonce00003', 3, true), nonce: 'thirdRoundNonce00003', now: 3 });
    expect(third.failures.map((f) => f.eventId)).to.deep.equal(['ima.validation.ima-ng.not_in_allowlist']);
    expect(third.failures[0]?.context).to.include({ path: '/usr/sbin/sshd-backdoor', line: 4 });
  });

  for (const bank of ['sha384', 'sha512'] as const) {
    it(`a node whose TPM quotes PCR 10 in its ${bank} bank passes, full then incremental, and fails a file outside the policy`, async () => {
      const own = await createSoftwareTpm({ banks: ['sha256', bank] });
      const ownDir = await mkdtemp(path.join(tmpdir(), 'ironlime-engine-'));
      try {
        const ownAk = await own.ensureAk(bank);
        const log = path.join(ownDir, 'ascii_runtime_measurements');
        const emulator = new ImaEmulator({ tpm: own, logPath: log, banks: ['sha256', bank] });
        await emulator.start();
        await emulator.measure([{ path: '/usr/bin/bash', content: Buffer.from('bash') }]);
        const lines = async (): Promise<string[]> => (await readFile(log, 'utf8')).split('\n').filter((l) => l !== '');
        const ownReply = async (nonce: string, entry: number): Promise<AgentQuoteReply> => {
          await own.resetPcr(16);
          await own.extendPcr(16, bank, new Uint8Array(createHash(bank).update(nkPem).digest()));
          const quote = await own.quote({ nonce: Buffer.from(nonce, 'ascii'), pcrs: [10, 16], hashAlg: bank });
          const text = (await lines()).slice(entry).map((l) => `${l}\n`).join('');
          return { quote: formatQuoteString(quote), hash_alg: bank, enc_alg: 'rsa2048', sign_alg: ownAk.signAlg, pubkey: nkPem, ima_measurement_list: text, ima_measurement_list_entry: entry };
        };
        const lsDigest = createHash('sha256').update('ls').digest('hex');
        const policies: AgentPolicies = {
          tpmPolicy: { mask: '0x400' },
          runtimePolicy: runtimePolicyFor([...(await lines()), `10 00 ima-ng sha256:${lsDigest} /usr/bin/ls`]),
          mbRefstate: null,
          measuredBootEvaluate: 'once',
          acceptTpmHashAlgs: [bank],
          acceptTpmEncryptionAlgs: ['rsa'],
          acceptTpmSigningAlgs: [ownAk.signAlg],
          akTpm: akPublicKey(Buffer.from(ownAk.akPublic).toString('base64')),
        };
        const state: AgentAttestationState = { ...initialAgentState(), operationalState: OperationalState.GET_QUOTE };
        const first = evaluateQuote({ state, policies, reply: await ownReply('firstRoundNonce00001', 0), nonce: 'firstRoundNonce00001', now: 1 });
        expect(first.failures).to.deep.equal([]);
        expect(first.nextState.ima.nextEntry).to.equal(2);
        await emulator.measure([{ path: '/usr/bin/ls', content: Buffer.from('ls') }]);
        const second = evaluateQuote({ state: first.nextState, policies, reply: await ownReply('secondRoundNonce0002', 2), nonce: 'secondRoundNonce0002', now: 2 });
        expect(second.failures).to.deep.equal([]);
        expect(second.claims.ima).to.deep.equal({ firstEntry: 2, entriesChecked: 1, entriesVerified: 1, nextEntry: 3 });
        await emulator.measure([{ path: '/usr/sbin/sshd-backdoor', content: Buffer.from('evil') }]);
        const third = evaluateQuote({ state: second.nextState, policies, reply: await ownReply('thirdRoundNonce00003', 3), nonce: 'thirdRoundNonce00003', now: 3 });
        expect(third.failures.map((f) => f.eventId)).to.deep.equal(['ima.validation.ima-ng.not_in_allowlist']);
      } finally {
        await own.close();
        await rm(ownDir, { recursive: true, force: true });
      }
    });
  }
});
