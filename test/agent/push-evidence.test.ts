import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { pino } from 'pino';
import { evidenceRequested } from '../../lib/agent/push/evidence-requested.js';
import { fileAgentLogs } from '../../lib/agent/agent-logs.js';
import { PushAgent } from '../../lib/agent/push/push-agent.js';
import type { AkInfo, Tpm } from '../../lib/tpm-access/tpm-port.js';

describe('push agent evidence: what the verifier asked for', function () {
  let dir: string;
  let quotes: number;
  let agent: PushAgent;

  before(function () {
    dir = mkdtempSync(path.join(tmpdir(), 'ironlime-push-evidence-'));
    const imaLogPath = path.join(dir, 'ima');
    writeFileSync(imaLogPath, 'line 0\nline 1\nline 2\n');
    agent = new PushAgent({
      uuid: 'd432fbb3-d2f1-4a97-9ef7-75bd81c00000',
      verifierUrl: 'http://127.0.0.1:1',
      tpm: {
        quote: () => {
          quotes += 1;
          return Promise.reject(new Error('no quote was asked for'));
        },
      } as unknown as Tpm,
      ak: { hashAlg: 'sha256', signAlg: 'rsassa' } as AkInfo,
      logs: fileAgentLogs(imaLogPath, undefined),
      bootTime: new Date(0),
      log: pino({ level: 'silent' }),
    });
  });

  beforeEach(function () {
    quotes = 0;
  });

  after(async function () {
    await agent.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('sends only the IMA entries when no tpm_quote is requested (Keylime asks for none when no PCR is required)', async function () {
    const body = await agent.evidence([{ evidence_class: 'log', evidence_type: 'ima_log', chosen_parameters: { starting_offset: 1, format: 'text/plain' } }]);
    expect(body).to.deep.equal({
      data: { type: 'attestation', attributes: { evidence_collected: [{ evidence_class: 'log', evidence_type: 'ima_log', data: { entries: 'line 1\nline 2\n', entry_count: 2 } }] } },
    });
    expect(quotes).to.equal(0);
  });

  it('an IMA offset at or past the end of its list gets no lines and entry_count 0 (the Rust push agent), not the whole list', async function () {
    for (const [offset, entries, count] of [[2, 'line 2\n', 1], [3, '', 0], [4, '', 0], [1000, '', 0]] as const) {
      const body = await agent.evidence([{ evidence_class: 'log', evidence_type: 'ima_log', chosen_parameters: { starting_offset: offset, format: 'text/plain' } }]);
      expect(body, `offset ${offset}`).to.deep.equal({
        data: { type: 'attestation', attributes: { evidence_collected: [{ evidence_class: 'log', evidence_type: 'ima_log', data: { entries, entry_count: count } }] } },
      });
    }
  });

  it('sends at most the entry_count a verifier asked for (a Keylime verifier refuses more lines than it asked)', async function () {
    for (const [most, entries, count] of [[0, '', 0], [1, 'line 1\n', 1], [2, 'line 1\nline 2\n', 2], [5, 'line 1\nline 2\n', 2]] as const) {
      const body = await agent.evidence([{ evidence_class: 'log', evidence_type: 'ima_log', chosen_parameters: { starting_offset: 1, entry_count: most, format: 'text/plain' } }]);
      expect(body, `entry_count ${most}`).to.deep.equal({
        data: { type: 'attestation', attributes: { evidence_collected: [{ evidence_class: 'log', evidence_type: 'ima_log', data: { entries, entry_count: count } }] } },
      });
    }
    for (const odd of [-1, 1.5, '1', null, Number.MAX_VALUE]) {
      const body = await agent.evidence([{ evidence_class: 'log', evidence_type: 'ima_log', chosen_parameters: { starting_offset: 1, entry_count: odd } }]);
      expect(JSON.stringify(body), `entry_count ${String(odd)} is no cap`).to.contain('"entries":"line 1\\nline 2\\n","entry_count":2');
    }
  });

  it('still gives up on a tpm_quote request it cannot use', async function () {
    const refused = await agent.evidence([{ evidence_class: 'certification', evidence_type: 'tpm_quote', chosen_parameters: { hash_algorithm: 'sha256' } }]).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(String(refused)).to.contain('no usable quote');
  });

  it('a 201 without evidence_requested, or naming nothing the agent can send, is not a request for empty evidence', function () {
    const created = (requested: unknown): unknown => ({ data: { attributes: { evidence_requested: requested } } });
    expect(evidenceRequested({ data: { attributes: {} } })).to.equal(undefined);
    expect(evidenceRequested(undefined)).to.equal(undefined);
    expect(evidenceRequested(created('tpm_quote'))).to.equal(undefined);
    expect(evidenceRequested(created([]))).to.equal(undefined);
    expect(evidenceRequested(created([null, { evidence_type: 'other' }]))).to.equal(undefined);
    const imaOnly = [{ evidence_class: 'log', evidence_type: 'ima_log' }];
    expect(evidenceRequested(created(imaOnly))).to.equal(imaOnly);
  });
});
