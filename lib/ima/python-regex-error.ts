/** A pattern is not a Python regular expression we can use; the message says why and where. */
export class PythonRegexError extends Error {
  constructor(
    message: string,
    readonly position: number,
  ) {
    super(`${message} at position ${position}`);
  }
}
