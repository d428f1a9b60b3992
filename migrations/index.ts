import type { IronlimeMigration } from '../lib/db/migrate.js';
import * as createNodes from './20261123000000-create-nodes.js';
import * as addNodeAttestationInterface from './20261123000100-add-node-attestation-interface.js';
import * as createRegistrarAgents from './20261123134712-create-registrar-agents.js';
import * as createVerifierTables from './20261124090000-create-verifier-tables.js';
import * as createBrokerTables from './20261202180000-create-broker-tables.js';
import * as createAuditLog from './20261202180500-create-audit-log.js';
import * as registrarPendingContact from './20261202181000-registrar-pending-contact.js';
import * as verifierPushMode from './20261203100000-verifier-push-mode.js';
import * as identityModes from './20261203110000-identity-modes.js';
import * as verifierLiveness from './20261203110100-verifier-liveness.js';
import * as verifierAgentTenant from './20261203120000-verifier-agent-tenant.js';
import * as verifierProcesses from './20261203130000-verifier-processes.js';
import * as brokerNodeDigestAndReinstatement from './20261203140000-broker-node-digest-and-reinstatement.js';
import * as verifierTrustLevelAndLivenessTenant from './20261203150000-verifier-trust-level-and-liveness-tenant.js';
import * as auditBatchPath from './20261204100000-audit-batch-path.js';
import * as verifierLivenessEvents from './20261204130000-verifier-liveness-events.js';
import * as registrarEkKeyHash from './20261204140000-registrar-ek-key-hash.js';
import * as registrarEkKeyHashRequired from './20261204150000-registrar-ek-key-hash-required.js';
import * as verifierHistoryRoundId from './20261204151500-verifier-history-round-id.js';
import * as brokerSessionAk from './20261204152000-broker-session-ak.js';
import * as nodesUniqueKeylimeAgent from './20261204160000-nodes-unique-keylime-agent.js';
import * as verifierLivenessMetadata from './20261204170000-verifier-liveness-metadata.js';
import * as verifierAgentContentVersion from './20261204180000-verifier-agent-content-version.js';
import * as brokerSessionTrustVector from './20261204200000-broker-session-trust-vector.js';
import * as brokerAppliedRevocations from './20261204203000-broker-applied-revocations.js';
import * as verifierPushBootLogs from './20261205003000-verifier-push-boot-logs.js';
import * as verifierPushBootLogOrder from './20261205030000-verifier-push-boot-log-order.js';
import * as verifierPushBootLogEnrolment from './20261205060000-verifier-push-boot-log-enrolment.js';
import * as verifierHistoryAttemptedBrin from './20261205120000-verifier-history-attempted-brin.js';
import * as verifierPushAttestationsPrune from './20261205130000-verifier-push-attestations-prune.js';
import * as verifierPolicyTenant from './20261205140000-verifier-policy-tenant.js';
import * as verifierProcessLockKey from './20261205143000-verifier-process-lock-key.js';
import * as verifierAgentStoppedFromVersion from './20261205150000-verifier-agent-stopped-from-version.js';
import * as apiTokenRevocations from './20261205160000-api-token-revocations.js';
import * as registrarModeIndex from './20261205170000-registrar-mode-index.js';
import * as verifierHistoryTenant from './20261206110000-verifier-history-tenant.js';
import * as verifierRevocationOutbox from './20261206120000-verifier-revocation-outbox.js';
import * as verifierLivenessEnrolment from './20261207130000-verifier-liveness-enrolment.js';
import * as createBrokerAuditLog from './20261210130000-create-broker-audit-log.js';
import * as createAuditCheckpoints from './20261210150000-create-audit-checkpoints.js';
import * as dashboardReadIndexes from './20261211160000-dashboard-read-indexes.js';
import * as verifierHistoryFailuresOmitted from './20261211170000-verifier-history-failures-omitted.js';
import * as auditFleetPolicyIndex from './20261211170100-audit-fleet-policy-index.js';
import * as auditSuccessfulChangesIndexes from './20261212180000-audit-successful-changes-indexes.js';

/**
 * Every ironlime migration, oldest first. knex runs them in this order through
 * `lib/db/migrate.ts` and records their `name` in `ironlime_migrations`.
 *
 * To change the schema: add a file `migrations/<UTC yyyymmddhhmmss>-<what>.ts` exporting `up` and
 * `down`, import it here and append ONE entry at the end, named exactly like the file. Never edit,
 * rename, reorder or delete an entry that was released: databases in the field have recorded it.
 */
export const MIGRATIONS: readonly IronlimeMigration[] = [
  { name: '20261123000000-create-nodes', ...createNodes },
  { name: '20261123000100-add-node-attestation-interface', ...addNodeAttestationInterface },
  { name: '20261123134712-create-registrar-agents', ...createRegistrarAgents },
  { name: '20261124090000-create-verifier-tables', ...createVerifierTables },
  { name: '20261202180000-create-broker-tables', ...createBrokerTables },
  { name: '20261202180500-create-audit-log', ...createAuditLog },
  { name: '20261202181000-registrar-pending-contact', ...registrarPendingContact },
  { name: '20261203100000-verifier-push-mode', ...verifierPushMode },
  { name: '20261203110000-identity-modes', ...identityModes },
  { name: '20261203110100-verifier-liveness', ...verifierLiveness },
  { name: '20261203120000-verifier-agent-tenant', ...verifierAgentTenant },
  { name: '20261203130000-verifier-processes', ...verifierProcesses },
  { name: '20261203140000-broker-node-digest-and-reinstatement', ...brokerNodeDigestAndReinstatement },
  { name: '20261203150000-verifier-trust-level-and-liveness-tenant', ...verifierTrustLevelAndLivenessTenant },
  { name: '20261204100000-audit-batch-path', ...auditBatchPath },
  { name: '20261204130000-verifier-liveness-events', ...verifierLivenessEvents },
  { name: '20261204140000-registrar-ek-key-hash', ...registrarEkKeyHash },
  { name: '20261204150000-registrar-ek-key-hash-required', ...registrarEkKeyHashRequired },
  { name: '20261204151500-verifier-history-round-id', ...verifierHistoryRoundId },
  { name: '20261204152000-broker-session-ak', ...brokerSessionAk },
  { name: '20261204160000-nodes-unique-keylime-agent', ...nodesUniqueKeylimeAgent },
  { name: '20261204170000-verifier-liveness-metadata', ...verifierLivenessMetadata },
  { name: '20261204180000-verifier-agent-content-version', ...verifierAgentContentVersion },
  { name: '20261204200000-broker-session-trust-vector', ...brokerSessionTrustVector },
  { name: '20261204203000-broker-applied-revocations', ...brokerAppliedRevocations },
  { name: '20261205003000-verifier-push-boot-logs', ...verifierPushBootLogs },
  { name: '20261205030000-verifier-push-boot-log-order', ...verifierPushBootLogOrder },
  { name: '20261205060000-verifier-push-boot-log-enrolment', ...verifierPushBootLogEnrolment },
  { name: '20261205120000-verifier-history-attempted-brin', ...verifierHistoryAttemptedBrin },
  { name: '20261205130000-verifier-push-attestations-prune', ...verifierPushAttestationsPrune },
  { name: '20261205140000-verifier-policy-tenant', ...verifierPolicyTenant },
  { name: '20261205143000-verifier-process-lock-key', ...verifierProcessLockKey },
  { name: '20261205150000-verifier-agent-stopped-from-version', ...verifierAgentStoppedFromVersion },
  { name: '20261205160000-api-token-revocations', ...apiTokenRevocations },
  { name: '20261205170000-registrar-mode-index', ...registrarModeIndex },
  { name: '20261206110000-verifier-history-tenant', ...verifierHistoryTenant },
  { name: '20261206120000-verifier-revocation-outbox', ...verifierRevocationOutbox },
  { name: '20261207130000-verifier-liveness-enrolment', ...verifierLivenessEnrolment },
  { name: '20261210130000-create-broker-audit-log', ...createBrokerAuditLog },
  { name: '20261210150000-create-audit-checkpoints', ...createAuditCheckpoints },
  { name: '20261211160000-dashboard-read-indexes', ...dashboardReadIndexes },
  { name: '20261211170000-verifier-history-failures-omitted', ...verifierHistoryFailuresOmitted },
  { name: '20261211170100-audit-fleet-policy-index', ...auditFleetPolicyIndex },
  { name: '20261212180000-audit-successful-changes-indexes', ...auditSuccessfulChangesIndexes },
];
