/**
 * The two tables of one audit log: its records and its streams' heads. Each log is signed by one key,
 * so two services that sign with different keys keep their chains apart even on one database: records
 * of two keys in one stream could not be verified with either.
 */
export interface AuditTables {
  readonly records: string;
  readonly heads: string;
}

/** The verifier's log (migration `create-audit-log`). */
export const VERIFIER_AUDIT_TABLES: AuditTables = { records: 'audit_records', heads: 'audit_heads' };

/** The resource broker's log (migration `create-broker-audit-log`), signed by the broker's own audit key. */
export const BROKER_AUDIT_TABLES: AuditTables = { records: 'broker_audit_records', heads: 'broker_audit_heads' };
