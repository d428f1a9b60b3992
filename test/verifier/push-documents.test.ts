import { expect } from 'chai';
import type { PushChoice } from '../../lib/attestation/push-decision.js';
import { evidenceAcknowledgedText } from '../../lib/verifier/push/push-documents.js';
import { previousEvidenceAcknowledged } from '../helpers/push-202-previous-builder.js';
import { hostileAcknowledgedCases } from '../helpers/push-202-hostile-cases.js';
import type { EvidenceBody } from '../../lib/verifier/push/push-dtos.js';
import type { PushAttestation } from '../../lib/verifier/push/push-repository.js';
import { evidenceHandlingResponseProblems } from '../helpers/rust-push-structs.js';

const KEY = { key_class: 'asymmetric', key_algorithm: 'rsa', key_size: 2048, server_identifier: 'ak', local_identifier: 'att_local_identifier', public: 'AAE=' };
const QUOTE_CAPABILITIES = { component_version: '2.0', hash_algorithms: ['sha256'], signature_schemes: ['rsassa'], available_subjects: { sha256: [0, 10] }, certification_keys: [KEY] };
const IMA_CAPABILITIES = { entry_count: 7, supports_partial_access: true, appendable: true, formats: ['text/plain'] };

function attestation(choice: Partial<PushChoice> = {}): PushAttestation {
  return {
    agentId: 'd432fbb3-d2f1-4a97-9ef7-75bd81c00000',
    index: 3,
    stage: 'evaluating_evidence',
    evaluation: null,
    failureReason: null,
    challenge: 'AAECAwQFBgcICQoLDA0ODw==',
    choice: {
      hashAlg: 'sha256',
      signatureScheme: 'rsassa',
      pcrs: [10],
      selectedSubjects: { sha256: [10] },
      certificationKey: KEY,
      capabilities: { tpm_quote: QUOTE_CAPABILITIES, ima_log: IMA_CAPABILITIES },
      uefiLog: false,
      imaStartingOffset: 5,
      imaEntryCount: 7,
      imaMode: 'continue',
      bootTime: 1_700_000_000,
      ...choice,
    },
    systemInfo: { boot_time: '2023-11-14T22:13:20Z' },
    capabilitiesReceivedAt: new Date(1_700_000_100_000),
    challengesExpireAt: new Date(1_700_001_900_000),
    evidenceReceivedAt: new Date(1_700_000_101_000),
    verificationCompletedAt: null,
  };
}

const BODY = {
  data: {
    type: 'attestation',
    attributes: {
      evidence_collected: [
        { evidence_class: 'certification', evidence_type: 'tpm_quote', data: { message: 'AQ==', signature: 'Ag==', subject_data: 'Aw==' } },
        { evidence_class: 'log', evidence_type: 'ima_log', data: { entries: 'line 6\nline 7\n' } },
      ],
    },
  },
} as EvidenceBody;

/** The 202 as the route sends it, parsed back. */
const evidenceAcknowledged = (attestation: PushAttestation, body: EvidenceBody, quoteInterval: number): object => JSON.parse(evidenceAcknowledgedText(attestation, body, quoteInterval)) as object;

describe('push documents: the 202 of an evidence PATCH', function () {
  it('says seconds_to_next_attestation in whole seconds, rounded up (the Rust agent reads a u64)', function () {
    expect((evidenceAcknowledged(attestation(), BODY, 2.5) as { meta: unknown }).meta).to.deep.equal({ seconds_to_next_attestation: 3 });
    expect((evidenceAcknowledged(attestation(), BODY, 0.2) as { meta: unknown }).meta).to.deep.equal({ seconds_to_next_attestation: 1 });
  });

  it('parses as EvidenceHandlingResponse; an IMA entry_count the agent left out is the lines it sent; no log text is repeated', function () {
    const document = evidenceAcknowledged(attestation(), BODY, 30) as { data: { attributes: { evidence: { data: unknown; capabilities: unknown }[] } } };
    expect(evidenceHandlingResponseProblems(document)).to.deep.equal([]);
    const [quote, ima] = document.data.attributes.evidence;
    expect(quote?.data).to.deep.equal({ subject_data: 'Aw==', message: 'AQ==', signature: 'Ag==' });
    expect(quote?.capabilities).to.deep.equal(QUOTE_CAPABILITIES);
    expect(ima?.data).to.deep.equal({ entries: '', entry_count: 2 });
    expect(ima?.capabilities).to.deep.equal(IMA_CAPABILITIES);
  });

  it('for an attestation that kept no capabilities (created before they were kept), restates them from the choice so that the reply still parses', function () {
    const document = evidenceAcknowledged(attestation({ capabilities: undefined, uefiLog: true }), BODY, 30) as { data: { attributes: { evidence: { capabilities: unknown }[] } } };
    expect(evidenceHandlingResponseProblems(document)).to.deep.equal([]);
    expect(document.data.attributes.evidence.map((item) => item.capabilities)).to.deep.equal([
      { component_version: '2.0', hash_algorithms: ['sha256'], signature_schemes: ['rsassa'], available_subjects: { sha256: [10] }, certification_keys: [KEY] },
      { entry_count: 0, supports_partial_access: false, appendable: false, formats: ['application/octet-stream'] },
      IMA_CAPABILITIES,
    ]);
  });

  it("is byte for byte the text JSON.stringify gave for the document before it was written member by member, on 20,000 hostile attestations and bodies", function () {
    let compared = 0;
    for (const { attestation: given, body, quoteInterval } of hostileAcknowledgedCases(20_000, attestation(), BODY)) {
      let expected: string | Error;
      try {
        expected = JSON.stringify(previousEvidenceAcknowledged(given, body, quoteInterval));
      } catch (error) {
        expected = error as Error;
      }
      if (expected instanceof Error) {
        expect(() => evidenceAcknowledgedText(given, body, quoteInterval)).to.throw(expected.constructor as ErrorConstructor);
        continue;
      }
      expect(evidenceAcknowledgedText(given, body, quoteInterval)).to.equal(expected);
      compared += 1;
    }
    expect(compared).to.be.greaterThan(15_000);
  });
});
