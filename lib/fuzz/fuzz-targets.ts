import type { FuzzTarget } from './fuzz-target-kit.js';
import { HTTP_FUZZ_TARGETS } from './http-fuzz-targets.js';
import { IMA_FUZZ_TARGETS } from './ima-fuzz-targets.js';
import { MEASURED_BOOT_FUZZ_TARGETS } from './measured-boot-fuzz-targets.js';
import { POLICY_FUZZ_TARGETS } from './policy-fuzz-targets.js';
import { TPM_FUZZ_TARGETS } from './tpm-fuzz-targets.js';

/** Every fuzz target, by family, in the order the fuzzer and the slice test run them. */
export const FUZZ_TARGETS: readonly FuzzTarget[] = [
  ...TPM_FUZZ_TARGETS,
  ...IMA_FUZZ_TARGETS,
  ...MEASURED_BOOT_FUZZ_TARGETS,
  ...POLICY_FUZZ_TARGETS,
  ...HTTP_FUZZ_TARGETS,
];
