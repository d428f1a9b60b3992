import type { ValidationError } from 'class-validator';

/** class-validator's type rules: when one of them failed, the range or format rules of that field say nothing useful. */
const TYPE_CONSTRAINTS = ['isNumber', 'isInt', 'isBoolean', 'isString', 'isArray', 'isObject', 'isUrl', 'isEnum', 'isIn'];

/** What a JSON string should have been, for the type rules a quoted value commonly breaks. */
const EXPECTED_INSTEAD_OF_STRING: Readonly<Record<string, string>> = {
  isNumber: 'must be a number',
  isInt: 'must be a number',
  isBoolean: 'must be true or false',
  isArray: 'must be a list',
  isObject: 'must be an object',
};

/**
 * The message of a field's first failed constraint, without the field name class-validator prefixes.
 * A failed type rule is reported before any other (a "300" in quotes is not a number, whatever its
 * range; a missing value keeps class-validator's order), and a value given as a JSON string where something else was expected says so.
 */
export function firstConstraintMessage(error: ValidationError): string {
  const constraints = error.constraints ?? {};
  if (constraints['whitelistValidation'] !== undefined) {
    return 'unknown field';
  }
  // A missing value breaks its type rule too; then the first rule (usually "should not be empty") says more.
  const typeRule = error.value === undefined ? undefined : TYPE_CONSTRAINTS.find((name) => constraints[name] !== undefined);
  const expected = typeRule === undefined ? undefined : EXPECTED_INSTEAD_OF_STRING[typeRule];
  if (expected !== undefined && typeof error.value === 'string') {
    return `${expected}, not the string ${JSON.stringify(error.value)}`;
  }
  const message = (typeRule === undefined ? undefined : constraints[typeRule]) ?? Object.values(constraints)[0] ?? 'is invalid';
  const own = `${error.property} `;
  return message.startsWith(own) ? message.slice(own.length) : message;
}
