import { Option, type Command } from 'commander';
import { IDENTITY_MODES, type IdentityMode } from '../identity/trust-level.js';
import type { RegistrarClient } from '../registrar/registrar-client.js';
import { TENANT_EK_CHECK_MODES, type TenantEkCheckMode } from '../tenant/ek-certificate-check.js';
import { checkAgentIdentity } from '../tenant/identity-check.js';
import {
  DEFAULT_REGISTRAR_TLS_URL,
  deleteRegistrarAgent,
  listRegistrarAgents,
  openRegistrarAdmin,
  registeredAgentJson,
  showRegistrarAgent,
} from '../tenant/registrar-agents.js';
import { resolveTenantTls, type TenantTlsSource } from '../tenant/tenant-tls.js';
import type { ServiceTls } from '../pki/service-tls.js';
import type { CommandRegistrar } from './cli-context.js';
import { registerTenantVerifierCommands } from './tenant-verifier-commands.js';
import { checkServiceUrl } from './tenant-verifier-connection.js';
import { tenantTlsHint } from './tenant-tls-hints.js';
import { EXIT_INVALID, EXIT_VALID } from './exit-codes.js';
import { agentId, collect } from './option-parsers.js';

interface ConnectionOptions {
  readonly registrar: string;
  readonly dataDir?: string;
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
}

interface IdentityOptions extends ConnectionOptions {
  readonly uuid: string;
  readonly ekCheck: TenantEkCheckMode;
  readonly ekCaDir: string[];
  readonly agentUrl?: string;
}

/**
 * `ironlime tenant registrar list|show|delete` (Keylime `keylime_tenant -c reglist|regstatus|regdelete`)
 * over mTLS to the registrar's TLS port, and `ironlime tenant identity`, the identity check the
 * tenant's `add` runs first (EK certificate, identity quote against the registered AK, PCR 16).
 */
export const registerTenantCommands: CommandRegistrar = (program, context) => {
  const tenant = program.command('tenant').description('operate on agents: registrar records, identity checks, enrolment with the verifier');
  registerTenantVerifierCommands(tenant, context);
  const registrar = tenant.command('registrar').description("the registrar's view of agents (admin, mTLS)");

  withConnection(registrar.command('list').description('print the ids of every registered agent')).action(
    (options: ConnectionOptions) =>
      withRegistrar(options, async (client) => {
        printJson({ uuids: await listRegistrarAgents(client) });
        context.setExitCode(EXIT_VALID);
      }),
  );

  withConnection(registrar.command('show').description("print an activated agent's registrar record"))
    .requiredOption('--uuid <id>', 'agent id', agentId)
    .action((options: ConnectionOptions & { uuid: string }) =>
      withRegistrar(options, async (client) => {
        printJson(registeredAgentJson(await showRegistrarAgent(client, options.uuid)));
        context.setExitCode(EXIT_VALID);
      }),
    );

  withConnection(registrar.command('delete').description("delete an agent's registrar record"))
    .requiredOption('--uuid <id>', 'agent id', agentId)
    .action((options: ConnectionOptions & { uuid: string }) =>
      withRegistrar(options, async (client) => {
        await deleteRegistrarAgent(client, options.uuid);
        process.stdout.write(`deleted agent ${options.uuid} from the registrar\n`);
        context.setExitCode(EXIT_VALID);
      }),
    );

  withConnection(registrar.command('trust').description("print how an agent registered (any mode, with or without a TPM): identity mode, trust level, refused downgrades"))
    .requiredOption('--uuid <id>', 'agent id', agentId)
    .action((options: ConnectionOptions & { uuid: string }) =>
      withRegistrar(options, async (client) => {
        const { host_proof_key: _key, ...identity } = await client.identity(options.uuid);
        printJson(identity);
        context.setExitCode(EXIT_VALID);
      }),
    );

  withConnection(registrar.command('allow-mode').description("allow an agent's next registration to use another identity mode (the explicit admin action; docs/identity.md)"))
    .requiredOption('--uuid <id>', 'agent id', agentId)
    .addOption(new Option('--mode <mode>', 'identity mode').choices(IDENTITY_MODES).makeOptionMandatory())
    .action((options: ConnectionOptions & { uuid: string; mode: IdentityMode }) =>
      withRegistrar(options, async (client) => {
        await client.allowModeChange(options.uuid, options.mode);
        process.stdout.write(`agent ${options.uuid} may register next as ${options.mode}\n`);
        context.setExitCode(EXIT_VALID);
      }),
    );

  withConnection(tenant.command('identity').description("check an agent's EK certificate and identity quote against its registered AK (exit 0 valid, 1 invalid)"))
    .requiredOption('--uuid <id>', 'agent id', agentId)
    .addOption(new Option('--ek-check <mode>', 'EK certificate check').choices(TENANT_EK_CHECK_MODES).default('require'))
    .option('--ek-ca-dir <dir>', 'extra trusted EK CA folder, added to the vendor store (repeatable)', collect, [])
    .option('--agent-url <url>', 'reach the agent here instead of its registered ip:port')
    .action((options: IdentityOptions) =>
      withRegistrar(options, async (client, tls) => {
        const verdict = await checkAgentIdentity({
          registrar: client,
          agentId: options.uuid,
          tls,
          ekCheck: options.ekCheck,
          extraEkCaDirs: options.ekCaDir,
          ...(options.agentUrl === undefined ? {} : { agentUrl: options.agentUrl }),
        });
        if (verdict.valid) {
          printJson({ valid: true, agent_id: verdict.agent.agentId, ek_anchor: verdict.ekAnchor ?? null, hash_alg: verdict.hashAlg, warnings: verdict.warnings });
          context.setExitCode(EXIT_VALID);
        } else {
          printJson({ valid: false, agent_id: verdict.agent.agentId, check: verdict.check, reason: verdict.reason });
          context.setExitCode(EXIT_INVALID);
        }
      }),
    );
};

function withConnection(command: Command): Command {
  return command
    .option('--registrar <url>', "registrar TLS URL", DEFAULT_REGISTRAR_TLS_URL)
    .option('--data-dir <dir>', "the registrar's data folder: its CA, and a tenant client certificate issued there")
    .option('--ca <file>', 'PEM CA of the registrar (with --cert and --key instead of --data-dir)')
    .option('--cert <file>', 'PEM client certificate from that CA')
    .option('--key <file>', 'PEM key of the client certificate');
}

async function withRegistrar(options: ConnectionOptions, use: (client: RegistrarClient, tls: ServiceTls) => Promise<void>): Promise<void> {
  checkServiceUrl('--registrar', options.registrar);
  const source: TenantTlsSource = {
    ...(options.dataDir === undefined ? {} : { dataDir: options.dataDir }),
    ...(options.ca === undefined ? {} : { caFile: options.ca }),
    ...(options.cert === undefined ? {} : { certFile: options.cert }),
    ...(options.key === undefined ? {} : { keyFile: options.key }),
  };
  const tls = await resolveTenantTls(source);
  const client = openRegistrarAdmin(options.registrar, tls);
  try {
    await use(client, tls);
  } catch (error) {
    throw tenantTlsHint(error, options) ?? error;
  } finally {
    client.close();
  }
}

function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}
