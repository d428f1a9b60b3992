import { createPrivateKey } from 'node:crypto';
import type { Command } from 'commander';
import { AttestationFailed, InvalidParameterValue, IronlimeError } from '../../interfaces/errors.js';
import { readRequiredPrivate } from '../pki/private-file.js';
import { MbRefstateError } from '../mb/mb-refstate.js';
import { checkEnrolmentPolicies, type CheckedEnrolmentPolicies, type EnrolmentPolicies } from '../tenant/enrolment-request.js';
import type { StatusVerdict } from '../attestation/operator-decision.js';
import { EnrolledWithoutBootstrapKey, type AddAgentOptions, type TenantClient } from '../tenant/tenant-client.js';
import { coverageWarnings, maskOfTpmPolicy } from './attestation-coverage.js';
import type { CliContext } from './cli-context.js';
import { EXIT_INVALID, EXIT_PENDING, EXIT_VALID } from './exit-codes.js';
import { messageOf } from '../verifier/error-message.js';
import { agentId, historyId, integerBetween } from './option-parsers.js';
import { registerPolicyStoreCommands } from './tenant-policy-commands.js';
import { connection, printJson, readBytes, readText, withTenant, type ConnectionOptions } from './tenant-verifier-connection.js';

interface AddOptions extends ConnectionOptions {
  readonly uuid: string;
  readonly runtimePolicy?: string;
  readonly allowlist?: string;
  readonly excludelist?: string;
  readonly runtimePolicyName?: string;
  readonly runtimePolicyKey?: string;
  readonly mbPolicy?: string;
  readonly mbPolicyName?: string;
  readonly tpmPolicy?: string;
  readonly imaSignKeys?: string;
  readonly payload?: string;
  readonly deliverKeys?: boolean;
  readonly verify?: boolean;
  readonly verifyTimeout: number;
  readonly agentUrl?: string;
  readonly revocationKey?: string;
  readonly push?: boolean;
}

/**
 * The tenant's verifier-facing commands (Keylime `keylime_tenant -c add|status|list|delete|update|
 * reactivate|…`, spec §8), added under `ironlime tenant`: enrol an agent after its identity check,
 * read its status, take it off, and manage the verifier's runtime-policy and measured-boot stores.
 * `status` exits 0 only for a fresh PASS (`judgeVerifierStatus`), 1 when the agent failed, 3 while not proven;
 * `add` exits 1 when the identity check fails.
 */
export function registerTenantVerifierCommands(tenant: Command, context: CliContext): void {
  const enrolment = (command: Command): Command =>
    connection(command)
      .requiredOption('--uuid <id>', 'agent id', agentId)
      .option('--runtime-policy <file>', 'runtime policy: Keylime JSON or a DSSE envelope (with --runtime-policy-key)')
      .option('--allowlist <file>', 'flat allowlist ("<hash> <path>" lines), converted to a runtime policy')
      .option('--excludelist <file>', 'exclude regexes, one per line, added to the runtime policy')
      .option('--runtime-policy-name <name>', 'store the policy under this name, or use the stored one without a file')
      .option('--runtime-policy-key <file>', 'PEM key or certificate a signed runtime policy verifies with')
      .option('--mb-policy <file>', 'measured-boot refstate JSON (Keylime example policy format)')
      .option('--mb-policy-name <name>', 'store the refstate under this name, or use the stored one without a file')
      .option('--tpm-policy <json|file>', 'PCR policy {"<pcr>": ["<hex>", …]}')
      .option('--ima-sign-keys <file>', 'IMA keyring JSON for ima-sig signatures')
      .option('--payload <file>', 'encrypt this file under a fresh bootstrap key K and deliver it (U now, V after a good quote)')
      .option('--deliver-keys', 'deliver a bootstrap key K without a payload')
      .option('--verify', 'after enrolment, wait until the agent proves it derived K (keys/verify); if it does not, the agent is stopped at the verifier (exit 1)')
      .option('--verify-timeout <seconds>', 'how long --verify waits, 1 to 3600', integerBetween(1, 3600), 60)
      .option('--agent-url <url>', "reach the agent here instead of its registered ip:port")
      .option('--revocation-key <file>', "PEM RSA private key the verifier signs this agent's revocation messages with (agents check them with --revocation-cert)")
      .option('--push', 'enrol a push-model agent (it attests itself; no address, port, identity quote or payload: docs/push.md)');

  enrolment(tenant.command('add').description("check an agent's identity, then enrol it with the verifier (exit 1: identity check failed)")).action(
    (options: AddOptions) => withTenant(options, async (client) => enrol(client, options, 'add', context)),
  );

  enrolment(tenant.command('update').description('check the new enrolment (policies, identity), then delete the agent from the verifier (waiting for 404) and add it again')).action(
    (options: AddOptions) => withTenant(options, async (client) => enrol(client, options, 'update', context)),
  );

  connection(tenant.command('status').description("print the verifier's status of an agent and the verdict on it (exit 0: a fresh PASS; 1: it failed; 3: not proven yet: pending, retrying, stale)"))
    .requiredOption('--uuid <id>', 'agent id', agentId)
    .option(
      '--stale-after <seconds>',
      "oldest last successful attestation a pass takes, 1 to 86400 (default: the verifier's freshness_bound, else 2 x attestation_period + 62; give it for a Keylime verifier that does not send attestation_period and quotes less often than every 2 s)",
      integerBetween(1, 86_400),
    )
    .action((options: ConnectionOptions & { uuid: string; staleAfter?: number }) =>
      withTenant(options, async (client) => {
        const { status, verdict } = await client.judgeStatus(options.uuid, options.staleAfter === undefined ? {} : { staleAfterSeconds: options.staleAfter });
        const mask = maskOfTpmPolicy((status as { tpm_policy?: unknown }).tpm_policy);
        const warnings = mask === undefined ? [] : coverageWarnings(mask);
        printJson({ ...status, ...verdictJson(verdict), ...(warnings.length === 0 ? {} : { warnings }) });
        context.setExitCode(exitCodeOf(verdict));
      }),
    );

  connection(tenant.command('list').description("print the ids of the verifier's agents"))
    .option('--verifier-id <id>', 'only agents of this verifier id')
    .action((options: ConnectionOptions & { verifierId?: string }) =>
      withTenant(options, async (client) => {
        printJson({ uuids: await client.listAgents(options.verifierId) });
        context.setExitCode(EXIT_VALID);
      }),
    );

  connection(tenant.command('history').description('print the newest attestation rounds of an agent, following the verifier\'s pages (ironlime verifiers)'))
    .requiredOption('--uuid <id>', 'agent id', agentId)
    .option('--limit <n>', 'rounds to print, 1 to 1000 (default 20)', integerBetween(1, 1000), 20)
    .option('--before <id>', 'only rounds older than this history id (the last id printed, to read on)', historyId)
    .action((options: ConnectionOptions & { uuid: string; limit: number; before?: number }) =>
      withTenant(options, async (client) => {
        printJson({ history: await client.history(options.uuid, options.limit, options.before) });
        context.setExitCode(EXIT_VALID);
      }),
    );

  connection(tenant.command('delete').description('remove an agent from the verifier and wait until it is gone'))
    .requiredOption('--uuid <id>', 'agent id', agentId)
    .option('--timeout <seconds>', 'give up waiting after this long, 1 to 86400', integerBetween(1, 86_400), 60)
    .action((options: ConnectionOptions & { uuid: string; timeout: number }) =>
      withTenant(options, async (client) => {
        await client.deleteAgent(options.uuid, { timeoutMs: options.timeout * 1000 });
        process.stdout.write(`deleted agent ${options.uuid} from the verifier\n`);
        context.setExitCode(EXIT_VALID);
      }),
    );

  for (const [name, description] of [
    ['reactivate', 'poll a failed or stopped agent again'],
    ['stop', 'stop polling an agent (Tenant Quote Failed)'],
  ] as const) {
    connection(tenant.command(name).description(description))
      .requiredOption('--uuid <id>', 'agent id', agentId)
      .action((options: ConnectionOptions & { uuid: string }) =>
        withTenant(options, async (client) => {
          await (name === 'stop' ? client.stopAgent(options.uuid) : client.reactivateAgent(options.uuid));
          process.stdout.write(`${name === 'stop' ? 'stopped' : 'reactivated'} agent ${options.uuid}\n`);
          context.setExitCode(EXIT_VALID);
        }),
      );
  }

  registerPolicyStoreCommands(tenant, context);
}

/** The exit code of a verdict: only a proven PASS is 0. */
function exitCodeOf(verdict: StatusVerdict): number {
  return verdict.kind === 'pass' ? EXIT_VALID : verdict.kind === 'fail' ? EXIT_INVALID : EXIT_PENDING;
}

/** The verdict as `status` prints it beside the verifier's fields. */
function verdictJson(verdict: StatusVerdict): Record<string, unknown> {
  if (verdict.kind === 'pass') return { verdict: 'pass' };
  if (verdict.kind === 'pending') return { verdict: 'pending', why: verdict.why };
  return { verdict: 'fail', reasons: verdict.reasons };
}

async function enrol(client: TenantClient, options: AddOptions, mode: 'add' | 'update', context: CliContext): Promise<void> {
  // Usage first: a wrong combination of options is told before any file is read.
  if (options.push === true && (options.payload !== undefined || options.deliverKeys === true || options.verify === true || options.agentUrl !== undefined || mode === 'update')) {
    throw new InvalidParameterValue('--push', 'takes no --payload, --deliver-keys, --verify or --agent-url, and works with add only');
  }
  if (options.verify === true && options.push !== true && options.payload === undefined && options.deliverKeys !== true) {
    // Without a key there is nothing to check: the enrolment was reported as if --verify were not given.
    throw new InvalidParameterValue('--verify', 'checks the bootstrap key K: give --deliver-keys or --payload with it');
  }
  const addOptions = await addOptionsFrom(options);
  const checked = checkedPolicies(addOptions, options);
  try {
    const result =
      options.push === true
        ? await client.addPushAgent(options.uuid, addOptions)
        : mode === 'add'
          ? await client.addAgent(options.uuid, addOptions)
          : await client.updateAgent(options.uuid, addOptions);
    const verified = options.verify === true && result.bootstrapKey !== undefined ? await verifyOrStop(client, options, result.bootstrapKey) : undefined;
    printJson({
      agent_id: result.agentId,
      enrolled: true,
      api_version: result.apiVersion,
      ek_anchor: result.identity.ekAnchor ?? null,
      warnings: [...result.identity.warnings, ...coverageWarnings(checked.mask)],
      ...(verified === undefined ? {} : { bootstrap_key_verified: verified }),
      ...(verified === false ? { stopped: true } : {}),
    });
    context.setExitCode(verified === false ? EXIT_INVALID : EXIT_VALID);
  } catch (error) {
    if (error instanceof AttestationFailed) {
      printJson({ agent_id: options.uuid, enrolled: false, reasons: error.reasons });
      context.setExitCode(EXIT_INVALID);
      return;
    }
    if (error instanceof EnrolledWithoutBootstrapKey && options.verify === true) {
      throw await stopUnkeyed(client, options.uuid, error);
    }
    throw error;
  }
}

/**
 * The enrolment's policies checked before anything is asked; a refstate that is not one names
 * `--mb-policy` and its file (a runtime policy given there said only "measured-boot refstate:
 * scrtm_and_bios is missing").
 */
function checkedPolicies(addOptions: AddAgentOptions, options: AddOptions): CheckedEnrolmentPolicies {
  try {
    return checkEnrolmentPolicies(addOptions);
  } catch (error) {
    if (error instanceof MbRefstateError && options.mbPolicy !== undefined) {
      throw new InvalidParameterValue('--mb-policy', `${options.mbPolicy}: ${error.message}`, { cause: error });
    }
    throw error;
  }
}

/**
 * `--verify` when U never reached the enrolled agent: it cannot prove K, so it is stopped at the
 * verifier as one that failed the check (`verifyOrStop`); the error to end with says whether the stop worked.
 */
async function stopUnkeyed(client: TenantClient, uuid: string, error: EnrolledWithoutBootstrapKey): Promise<IronlimeError> {
  const stopError = await client.stopAgent(uuid).then(
    () => undefined,
    (caught: unknown) => caught,
  );
  const message =
    stopError === undefined
      ? `--verify failed, agent ${uuid} stopped at the verifier (tenant reactivate polls it again): ${error.message}`
      : `--verify failed: ${error.message}; and stopping agent ${uuid} at the verifier failed too: ${messageOf(stopError)}`;
  return new IronlimeError(error.code, message, { cause: error });
}

/**
 * `--verify`: true once the agent proved it derived K. An agent that did not (another key, or none in
 * `--verify-timeout`, or no answer) is stopped at the verifier, as Keylime's `do_verify` calls
 * `do_cvstop`: it must not go on passing attestation (and get its V delivered again) as if provisioned.
 * @throws IronlimeError when the check itself failed (the agent stopped, or said why it could not be)
 */
async function verifyOrStop(client: TenantClient, options: AddOptions, k: Buffer): Promise<boolean> {
  let failure: unknown;
  try {
    const verified = await client.verifyBootstrapKey(options.uuid, k, { timeoutMs: options.verifyTimeout * 1000, ...(options.agentUrl === undefined ? {} : { agentUrl: options.agentUrl }) });
    if (verified) return true;
  } catch (error) {
    failure = error;
  }
  const stopError = await client.stopAgent(options.uuid).then(
    () => undefined,
    (error: unknown) => error,
  );
  if (stopError !== undefined) {
    throw new IronlimeError('ERR_ATTESTATION_SERVICE_UNAVAILABLE', `--verify failed${failure === undefined ? ' (the agent holds another key)' : `: ${messageOf(failure)}`}, and stopping agent ${options.uuid} at the verifier failed too: ${messageOf(stopError)}`, { cause: failure ?? stopError });
  }
  if (failure !== undefined) {
    throw new IronlimeError(failure instanceof IronlimeError ? failure.code : 'ERR_ATTESTATION_SERVICE_UNAVAILABLE', `--verify failed, agent ${options.uuid} stopped at the verifier (tenant reactivate polls it again): ${messageOf(failure)}`, { cause: failure });
  }
  return false;
}

/**
 * The text of `--runtime-policy` or `--allowlist`. As Keylime's tenant, `--runtime-policy` takes JSON
 * only (a runtime policy or a DSSE envelope); a flat allowlist there is refused naming `--allowlist`,
 * where it was read as one line by line ("allowlist line 1") under the JSON option's name.
 */
async function readPolicyText(options: AddOptions): Promise<string | undefined> {
  if (options.allowlist !== undefined) return readText(options.allowlist, '--allowlist');
  if (options.runtimePolicy === undefined) return undefined;
  const text = await readText(options.runtimePolicy, '--runtime-policy');
  // JSON as `loadRuntimePolicy` tells it: the first non-blank character is `{`.
  if (!/^\s*\{/.test(text)) {
    throw new InvalidParameterValue(
      '--runtime-policy',
      `${options.runtimePolicy} is not JSON (a Keylime runtime policy, or a DSSE envelope of one); give a flat allowlist ("<digest> <path>" lines) with --allowlist`,
    );
  }
  return text;
}

async function addOptionsFrom(options: AddOptions): Promise<AddAgentOptions> {
  if (options.runtimePolicy !== undefined && options.allowlist !== undefined) {
    throw new InvalidParameterValue('--runtime-policy/--allowlist', 'give at most one of them');
  }
  const runtimePolicy = await readPolicyText(options);
  const policies: EnrolmentPolicies = {
    ...(runtimePolicy === undefined ? {} : { runtimePolicy }),
    ...(options.excludelist === undefined ? {} : { excludeList: await readText(options.excludelist, '--excludelist') }),
    ...(options.runtimePolicyName === undefined ? {} : { runtimePolicyName: options.runtimePolicyName }),
    ...(options.runtimePolicyKey === undefined ? {} : { runtimePolicyKey: await readText(options.runtimePolicyKey, '--runtime-policy-key') }),
    ...(options.mbPolicy === undefined ? {} : { mbPolicy: await readText(options.mbPolicy, '--mb-policy') }),
    ...(options.mbPolicyName === undefined ? {} : { mbPolicyName: options.mbPolicyName }),
    ...(options.tpmPolicy === undefined ? {} : { tpmPolicy: options.tpmPolicy.trim().startsWith('{') ? options.tpmPolicy : await readText(options.tpmPolicy, '--tpm-policy') }),
    ...(options.imaSignKeys === undefined ? {} : { imaSignVerificationKeys: await readText(options.imaSignKeys, '--ima-sign-keys') }),
  };
  return {
    ...policies,
    ...(options.agentUrl === undefined ? {} : { agentUrl: options.agentUrl }),
    ...(options.payload === undefined ? {} : { payload: await readBytes(options.payload, '--payload') }),
    ...(options.deliverKeys === true ? { deliverKeys: true } : {}),
    ...(options.revocationKey === undefined ? {} : { revocationKey: await readRevocationKey(options.revocationKey) }),
  };
}

/** The revocation key as PEM text, refused here unless it is an RSA private key (Keylime signs RSA-PSS). */
async function readRevocationKey(file: string): Promise<string> {
  const pem = await readRequiredPrivate(file, { label: '--revocation-key', error: InvalidParameterValue, refusalAsError: true });
  let type: string | undefined;
  try {
    type = createPrivateKey(pem).asymmetricKeyType;
  } catch {
    type = undefined;
  }
  if (type !== 'rsa') throw new InvalidParameterValue('--revocation-key', `${file} is not a PEM RSA private key`);
  return pem;
}
