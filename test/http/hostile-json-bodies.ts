/** Bodies a service refuses before any DTO sees them (the route's value bound being 512), each with what makes it so. */
export const HOSTILE_BODIES: readonly (readonly [string, string])[] = [
  ['too many values', `[${'0,'.repeat(600)}0]`],
  ['too deep', `${'['.repeat(40)}${']'.repeat(40)}`],
  ['a __proto__ key', '{"a": 1, "__proto__": {"polluted": true}}'],
  ['a nested constructor key', '{"a": {"b": [{"constructor": {}}]}}'],
  ['a prototype key', '{"prototype": 1}'],
  ['text that is not JSON', '{"a": '],
  ['two values', '{} {}'],
];

/** `text` followed by 2 MiB of blanks: over the 1 MiB past which a body is parsed in a thread, and the same JSON (or not) as `text`. */
export function paddedPast1MiB(text: string): string {
  return `${text}${' '.repeat(2 * 1024 * 1024)}`;
}
