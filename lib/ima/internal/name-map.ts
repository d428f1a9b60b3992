/**
 * Name → list objects for policies (`digests`, `keyrings`, `ima-buf`) built without a prototype:
 * the names are file paths and keyring names from the input, and `constructor`, `toString` or
 * `__proto__` is a legal file name that must be a key like any other, never an inherited member
 * (a plain `{}` would crash on the first two and silently drop the third). JSON output and
 * `Object.entries` see the same keys as for a plain object.
 */
export function nameMap<T>(): Record<string, T> {
  return Object.create(null) as Record<string, T>;
}

/** Appends `value` to the list under `name`, creating it. */
export function appendTo<T>(map: Record<string, T[]>, name: string, value: T): void {
  const list = Object.hasOwn(map, name) ? map[name] : undefined;
  if (list === undefined) {
    map[name] = [value];
  } else {
    list.push(value);
  }
}
