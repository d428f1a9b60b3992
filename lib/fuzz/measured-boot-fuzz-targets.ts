import { parseEventLogInput } from '../mb/event-log-input.js';
import { parseMbRefstate } from '../mb/parse-refstate.js';
import { asText, packageFiles, vectorFiles, vectorFolder } from './fuzz-seeds.js';
import { bytesOf, JSON_TOKENS, textOf, type FuzzTarget } from './fuzz-target-kit.js';

/** Fuzz targets of measured boot: the event logs and the reference states. */
export const MEASURED_BOOT_FUZZ_TARGETS: readonly FuzzTarget[] = [
  {
    name: 'event-log',
    description: 'UEFI / TCG event logs (binary or base64)',
    kind: 'bytes',
    seeds: () => [
      ...vectorFiles('keylime/measured_boot/binary_bios_measurements', 'keylime/measured_boot/binary_bios_measurements-secureboot', 'keylime/measured_boot/binary_bios_measurements-bogus', 'rust-keylime/uefi_log.bin'),
      ...vectorFolder('tpm2-tools', /^event.*\.bin$/),
      ...packageFiles('fixtures/eventlogs/ubuntu-2104-no-secure-boot.bin'),
    ],
    run: (input) => void parseEventLogInput(bytesOf(input)),
  },
  {
    name: 'refstate',
    description: 'measured-boot reference states (Keylime create_mb_refstate JSON)',
    kind: 'text',
    tokens: [...JSON_TOKENS, '"scrtm_and_bios"', '"kernel_cmdline"', '"mokdig"', '"pk"', '"kek"', '"db"', '"dbx"', '"(a+)+$"', '"sha256"'],
    seeds: () => asText(vectorFiles('keylime/measured_boot/example_reference_state.json')),
    run: (input) => void parseMbRefstate(textOf(input)),
  },
];
