import type { BootEvent } from '../boot-events.js';
import {
  bootApplications,
  firmwareCode,
  initrdEvents,
  pcr2Code,
  scrtmEvents,
  vmlinuzEvents,
} from './boot-components.js';
import { kernelCommandLines, type KernelCommandLine } from '../boot-state.js';
import { KERNEL_CMDLINE_PREFIX, kernelCmdlineMatcher } from './kernel-cmdline-pattern.js';
import type { MbRefstate, RefstateKernel } from '../mb-refstate.js';
import type { MatchAllowance } from '../../python-regex/match-allowance.js';
import {
  bestAlternative,
  digestSet,
  inDigestSet,
  LISTED_EVENTS,
  listedNote,
  POLICY_BANK,
  refHex,
  sequenceFindings,
  type PolicyFinding,
} from './policy-finding.js';
import { pickInSteps } from './events-per-step.js';
import type { Stepwise } from '../../ima/stepwise.js';

/**
 * Firmware and boot-chain checks of the `example` policy: S-CRTM version and firmware code in PCR 0
 * (one `scrtm_and_bios` entry must match exactly, in order), PCR 2 code against `option_roms` when
 * the refstate lists them, and the boot chain (one `kernels` entry must match: PCR 4 applications,
 * PCR 9 kernel and initrd, PCR 8 command line). The command line patterns are charged to
 * `allowance` when given. Pauses between chunks of events (`Stepwise`).
 *
 * @throws whatever `allowance` throws when a pattern's run could pass it.
 */
export function* bootChainFindings(events: readonly BootEvent[], refstate: MbRefstate, allowance?: MatchAllowance): Stepwise<PolicyFinding[]> {
  // Each component picked a chunk of events at a time: a hostile log may hold hundreds of thousands of one kind.
  const chain: BootChain = {
    scrtm: yield* pickInSteps(events, scrtmEvents),
    code: yield* pickInSteps(events, firmwareCode),
    pcr2: yield* pickInSteps(events, pcr2Code),
    apps: yield* pickInSteps(events, bootApplications),
    initrds: yield* pickInSteps(events, initrdEvents),
    kernels: yield* pickInSteps(events, vmlinuzEvents),
    cmdlines: yield* pickInSteps(events, kernelCommandLines),
  };
  return [...firmwareFindings(chain, refstate), ...optionRomFindings(chain, refstate), ...kernelFindings(chain, refstate, allowance)];
}

/** The events of each boot-chain component, in log order. */
interface BootChain {
  readonly scrtm: readonly BootEvent[];
  readonly code: readonly BootEvent[];
  readonly pcr2: readonly BootEvent[];
  readonly apps: readonly BootEvent[];
  readonly initrds: readonly BootEvent[];
  readonly kernels: readonly BootEvent[];
  readonly cmdlines: readonly KernelCommandLine[];
}

function firmwareFindings({ scrtm, code }: BootChain, refstate: MbRefstate): PolicyFinding[] {
  const alternatives = refstate.scrtm_and_bios.map((allowed, i) => {
    const where = `scrtm_and_bios[${i}]`;
    const expectedScrtm = allowed.scrtm === undefined ? [] : [allowed.scrtm[POLICY_BANK]];
    return [
      ...sequenceFindings(`${where}.scrtm`, 'S-CRTM version event(s)', scrtm, expectedScrtm),
      ...sequenceFindings(`${where}.platform_firmware`, 'firmware code measurement(s) in PCR 0', code, allowed.platform_firmware.map((d) => d[POLICY_BANK])),
    ];
  });
  return bestAlternative(alternatives, 'scrtm_and_bios');
}

function optionRomFindings({ pcr2 }: BootChain, refstate: MbRefstate): PolicyFinding[] {
  const allowed = refstate.option_roms;
  if (allowed === undefined) {
    return [];
  }
  const allowedSet = digestSet(allowed);
  return pcr2
    .filter((e) => !inDigestSet(e, allowedSet))
    .map((e) => ({
      component: 'option_roms',
      reason: `${e.untrustedTypeName} in PCR 2 is not in the refstate's option_roms`,
      expected: `one of ${allowed.length} option ROM / driver digest(s)`,
      actual: { sha256: refHex(e.digest) },
      events: [e.sequence],
    }));
}

function kernelFindings(chain: BootChain, refstate: MbRefstate, allowance: MatchAllowance | undefined): PolicyFinding[] {
  const firmwareApps = digestSet(refstate.firmware_apps ?? []);
  const apps = chain.apps.filter((e) => !inDigestSet(e, firmwareApps));
  const { initrds, kernels, cmdlines } = chain;
  const alternatives = refstate.kernels.map((k, i) => {
    const where = `kernels[${i}]`;
    return [
      ...appFindings(where, apps, k, refstate.has_secureboot),
      ...sequenceFindings(where, 'initrd file(s) in PCR 9', initrds, k.initrd_plain_sha256 === undefined ? [] : [k.initrd_plain_sha256], ['initrd_plain_sha256']),
      ...(refstate.has_secureboot
        ? countFinding(`${where}.vmlinuz`, 'kernel file(s) in PCR 9', kernels, 1)
        : sequenceFindings(where, 'kernel file(s) in PCR 9', kernels, [k.vmlinuz_plain_sha256], ['vmlinuz_plain_sha256'])),
      ...cmdlineFindings(where, cmdlines, k, allowance),
    ];
  });
  return bestAlternative(alternatives, 'kernels');
}

/** PCR 4 applications: shim, GRUB, then with Secure Boot the kernel (measured once or twice). */
function appFindings(where: string, apps: readonly BootEvent[], k: RefstateKernel, secureBoot: boolean): PolicyFinding[] {
  const names = ['shim_authcode_sha256', 'grub_authcode_sha256', 'kernel_authcode_sha256', 'kernel_authcode_sha256'];
  const expected = [k.shim_authcode_sha256, k.grub_authcode_sha256];
  if (secureBoot) {
    expected.push(k.kernel_authcode_sha256 ?? '');
    if (apps.length === 4) {
      expected.push(k.kernel_authcode_sha256 ?? '');
    }
  }
  return sequenceFindings(where, 'EFI application(s) in PCR 4', apps, expected, names);
}

function countFinding(component: string, what: string, events: readonly BootEvent[], expected: number): PolicyFinding[] {
  return events.length === expected
    ? []
    : [{
        component,
        reason: `the log has ${events.length} ${what}, the refstate expects ${expected}${listedNote(events)}`,
        events: events.slice(0, LISTED_EVENTS).map((e) => e.sequence),
      }];
}

/**
 * Exactly one `kernel_cmdline: ` string, proven by its digest, fully matching the refstate regex
 * (Keylime: `RegExp("kernel_cmdline: " + pattern)` with `fullmatch`), on a linear-time engine. The
 * text is Keylime's (trailing NUL dropped); a refstate made by ironlime before that change escaped
 * the NUL too, so the text with its NUL is tried as well: both are the same digest-proven event.
 */
function cmdlineFindings(where: string, cmdlines: readonly KernelCommandLine[], k: RefstateKernel, allowance: MatchAllowance | undefined): PolicyFinding[] {
  const component = `${where}.kernel_cmdline`;
  const [only] = cmdlines;
  if (only === undefined || cmdlines.length > 1) {
    return countFinding(component, 'kernel command line(s) in PCR 8', cmdlines.map((c) => c.event), 1);
  }
  if (!only.event.dataMatchesDigest) {
    return [{ component, reason: 'the kernel command line event does not match its digest', events: [only.event.sequence] }];
  }
  const matches = kernelCmdlineMatcher(k);
  if (matches(`${KERNEL_CMDLINE_PREFIX}${only.text}`, allowance) || (only.rawText !== only.text && matches(`${KERNEL_CMDLINE_PREFIX}${only.rawText}`, allowance))) {
    return [];
  }
  return [{
    component,
    reason: 'the kernel command line does not match the refstate regex',
    expected: k.kernel_cmdline,
    actual: only.text,
    events: [only.event.sequence],
  }];
}
