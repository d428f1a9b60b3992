import type { HostId } from '../identity/host-id.js';
import type { SwtpmLog } from '../tpm-access/swtpm-manager.js';
import type { AkInfo, EkInfo, Tpm } from '../tpm-access/tpm-port.js';
import type { AgentConfig } from './agent-config.js';
import { agentHostId } from './agent-host-id.js';
import { openAgentTpm, type AgentTpm } from './agent-tpm.js';
import { bootEmulatedNode, defaultBootLogPath, type EmulatedNode } from './node-emulation.js';

/** The kernel's logs on a real host (spec §2). */
export const KERNEL_IMA_LOG = '/sys/kernel/security/ima/ascii_runtime_measurements';
export const KERNEL_BOOT_LOG = '/sys/kernel/security/tpm0/binary_bios_measurements';

/** What the pull and the push agent both start from before they register. */
export interface AgentNode {
  readonly tpm: Tpm;
  readonly ek: EkInfo;
  readonly ak: AkInfo;
  /** Set for an emulated node (`emulate: true`): its replayed boot log and growing IMA list. */
  readonly emulated: EmulatedNode | undefined;
  /** The CA folder of the swtpm opened here (its EK certificate's issuer), when there is one. */
  readonly ekCaDir: string | undefined;
  /** How it registers (`identity_mode`): the TPM modes only. */
  readonly identity: 'tpm' | 'emulated-tpm';
  readonly hostId: HostId | undefined;
  readonly imaLogPath: string;
  readonly bootLogPath: string;
}

/**
 * Opens the node's TPM (unless `given`), ensures EK and AK, boots the emulated node when configured,
 * and says how it registers. Each thing opened pushes its close onto `cleanups`, so the caller stops
 * them in reverse order on failure or shutdown. `log` hears of an own swtpm's failed TPM2_Shutdown.
 */
export async function prepareAgentNode(config: AgentConfig, given: Tpm | undefined, cleanups: (() => Promise<void>)[], log?: SwtpmLog): Promise<AgentNode> {
  let tpm = given;
  let opened: AgentTpm | undefined;
  if (tpm === undefined) {
    const own = await openAgentTpm(config.tpm, config.dataDir, config.swtpmCaDir, log);
    cleanups.push(() => own.close());
    opened = own;
    tpm = own.tpm;
  }
  const ek = await tpm.ensureEk();
  const ak = await tpm.ensureAk(config.hashAlg);
  let emulated: EmulatedNode | undefined;
  if (config.emulate) {
    const node = await bootEmulatedNode(tpm, config.dataDir, config.bootLog ?? defaultBootLogPath(), opened?.tcti);
    cleanups.push(() => node.close());
    emulated = node;
  }
  return {
    tpm,
    ek,
    ak,
    emulated,
    ekCaDir: opened?.ekCaDir,
    identity: config.identity === 'emulated-tpm' ? 'emulated-tpm' : 'tpm',
    // Only when configured: emulated nodes on one machine share its SMBIOS UUID and MAC.
    hostId: config.hostId === undefined ? undefined : agentHostId(config.hostId),
    imaLogPath: emulated?.imaLogPath ?? config.imaLog ?? KERNEL_IMA_LOG,
    bootLogPath: emulated?.bootLogPath ?? config.bootLog ?? KERNEL_BOOT_LOG,
  };
}
