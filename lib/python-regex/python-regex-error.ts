/**
 * A pattern is not a Python regular expression we can run; the message says why and where.
 * `unsupported` names the feature when Python accepts the pattern but the linear-time engine (RE2
 * semantics) cannot express it — `backreference`, `lookahead`, `lookbehind`, … — and is undefined
 * when Python itself refuses the pattern.
 */
export class PythonRegexError extends Error {
  constructor(
    message: string,
    readonly position: number,
    readonly unsupported?: string,
  ) {
    super(`${message} at position ${position}`);
  }
}

/** Throws the error for a feature Python has and RE2 does not. */
export function unsupportedFeature(feature: string, why: string, position: number): never {
  throw new PythonRegexError(`${feature}: ${why} (patterns run on a linear-time RE2 engine)`, position, feature);
}
