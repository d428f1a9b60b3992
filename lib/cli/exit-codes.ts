/**
 * Exit codes shared by every `ironlime` command that checks evidence: 0 the evidence is valid,
 * 1 it is invalid (well-formed but failing a check), 2 the input is malformed or the call is wrong,
 * 3 no verdict yet (`tenant status`: the verifier has not proven the agent healthy, nor failed it).
 */
export const EXIT_VALID = 0;
export const EXIT_INVALID = 1;
export const EXIT_USAGE = 2;
export const EXIT_PENDING = 3;
