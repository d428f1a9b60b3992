// The package root: everything a provisioning orchestrator (or a third-party driver) needs.
// tsyringe and class-validator read decorator metadata, so the polyfill loads before anything else.
import 'reflect-metadata';

export { AttestationInterface } from './interfaces/attestation-interface.js';
export type { AttestationStatus, DriverInfo, LastAttestation, Node } from './interfaces/node.js';
export type { Task, TaskLogger } from './interfaces/task.js';
export type { IronlimeSettings, KeylimeSettings } from './interfaces/settings.js';
export {
  checkRequiredProperties,
  mergeProperties,
  readOptionalChoice,
  readOptionalInteger,
  readOptionalString,
} from './interfaces/driver-info.js';
export {
  AttestationFailed,
  AttestationServiceUnavailable,
  DatabaseUnavailable,
  ERROR_CODES,
  InterfaceNotEnabled,
  InterfaceNotFound,
  InvalidConfig,
  InvalidParameterValue,
  IronlimeError,
  MissingParameterValue,
  NodeAlreadyExists,
  NodeNotFound,
  TrustLevelTooLow,
} from './interfaces/errors.js';
export type { ErrorCode, IronlimeErrorOptions } from './interfaces/errors.js';

export { NoAttestation } from './drivers/no-attestation/no-attestation.js';
export { FakeAttestation } from './drivers/fake/fake-attestation.js';
export type { FakeCall, FakeOperation, FakeScript } from './drivers/fake/fake-attestation.js';
export { KeylimeAttestation } from './drivers/keylime/keylime-attestation.js';
export type { KeylimeAttestationOptions } from './drivers/keylime/keylime-attestation.js';
export { KEYLIME_DRIVER_OPTIONS } from './drivers/keylime/keylime-driver-options.js';
export type { AgentLocation, AgentLocator, DriverInfoWriter } from './drivers/keylime/agent-locator.js';

export {
  BUILTIN_ATTESTATION_INTERFACES,
  DEFAULT_ATTESTATION_INTERFACE,
  DRIVER_CONTAINER,
  DriverRegistry,
  ENABLED_ATTESTATION_INTERFACES,
} from './lib/provisioning/driver-registry.js';
export type { AttestationInterfaceFactory } from './lib/provisioning/driver-registry.js';
export { AttestationHooks } from './lib/provisioning/attestation-hooks.js';
export type { AttestationOutcome, AttestationStage } from './lib/provisioning/attestation-hooks.js';
export { NodeStore } from './lib/provisioning/node-store.js';
export type { AttestationRecord, NewNode, NodeChanges } from './lib/provisioning/node-store.js';
export { createProvisioningContainer } from './lib/provisioning/provisioning-container.js';
export type { ProvisioningContainerOptions } from './lib/provisioning/provisioning-container.js';
export { createTask, SILENT_LOGGER } from './lib/provisioning/create-task.js';
export { ExampleOrchestrator, NodeBusy, STATES } from './lib/provisioning/example-orchestrator.js';
export type { ExampleOrchestratorOptions, Transition } from './lib/provisioning/example-orchestrator.js';
export { NodeSecretRelease } from './lib/provisioning/node-secret-release.js';
export type { NodeSecretReleaseOptions } from './lib/provisioning/node-secret-release.js';
export { BrokerAdminClient } from './lib/broker/broker-admin-client.js';
export type { BrokerAdminClientOptions, BrokerNodeInput } from './lib/broker/broker-admin-client.js';
export { KbsClientBuilder } from './lib/kbs-client/kbs-client-builder.js';
export type { KbsClient, KbsMode, SealedResource } from './lib/kbs-client/kbs-client.js';
export type { EvidenceProvider } from './lib/kbs-client/evidence-provider.js';
export { TpmEvidenceProvider } from './lib/kbs-client/tpm-evidence-provider.js';
export type { TpmEvidenceProviderOptions } from './lib/kbs-client/tpm-evidence-provider.js';
export type { TeeKeyKind } from './lib/kbs-client/tee-key-pair.js';
export { KbsBadReplyError, KbsRefusedError } from './lib/kbs-client/kbs-client-errors.js';
export { openTpm2ToolsTpm } from './lib/tpm-access/tpm2-tools/tpm-adapter.js';
export type { Tpm2ToolsTpmOptions } from './lib/tpm-access/tpm2-tools/tpm-adapter.js';
export type { EkAlgorithm, Tpm, TpmHashAlgorithm } from './lib/tpm-access/tpm-port.js';
export type { TaskOptions } from './lib/provisioning/create-task.js';

export { createDatabase } from './lib/db/database-factory.js';
export type { Database, DatabaseOptions } from './lib/db/database-factory.js';
export { DATABASE } from './lib/db/database-token.js';
export {
  appliedMigrations,
  IronlimeMigrationSource,
  migrateLatest,
  migrateRollbackAll,
  migrateRollbackLastBatch,
  MIGRATIONS_TABLE,
} from './lib/db/migrate.js';
export type { IronlimeMigration, MigrateOptions } from './lib/db/migrate.js';
export { MIGRATIONS } from './migrations/index.js';

export { IronlimeConfig, KeylimeConfig } from './lib/config/ironlime-config.js';
export { buildConfig, loadConfig } from './lib/config/load-config.js';
export type { LoadConfigOptions } from './lib/config/load-config.js';
export { ENV_VARIABLES } from './lib/config/config-env.js';
export { IRONLIME_CONFIG } from './lib/config/config-token.js';
