/** True when `value`'s JSON text has at most `max` characters (UTF-16 units); false for what JSON cannot carry. */
export function isJsonOfAtMost(value: unknown, max: number): boolean {
  try {
    const text = JSON.stringify(value) as string | undefined;
    return text !== undefined && text.length <= max;
  } catch {
    return false;
  }
}
