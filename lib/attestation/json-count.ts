/**
 * A count or offset in an agent's or a verifier's JSON (`ima_measurement_list_entry`, `entry_count`,
 * `starting_offset`): a non-negative safe integer, so that it indexes and adds without losing precision.
 */
export function isJsonCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}
