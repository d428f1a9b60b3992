/** A change's audit record for tests that store a change outside any admin request: none. */
export async function noAuditRecord(): Promise<void> {}
