/** A slow hash stood in for by a promise the test settles when it likes: it resolves to `'hashed'`. */
export function heldHash(): { promise: Promise<string>; finish: () => void } {
  let finish: () => void = () => undefined;
  const promise = new Promise<string>((resolve) => {
    finish = () => resolve('hashed');
  });
  return { promise, finish };
}
