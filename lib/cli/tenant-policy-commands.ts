import type { Command } from 'commander';
import { InvalidParameterValue } from '../../interfaces/errors.js';
import { loadRuntimePolicy } from '../ima/policy-loader.js';
import type { CliContext } from './cli-context.js';
import { EXIT_VALID } from './exit-codes.js';
import { connection, printJson, readText, withTenant, type ConnectionOptions } from './tenant-verifier-connection.js';

/**
 * `ironlime tenant allowlist add|show|list|delete` and `ironlime tenant mbpolicy add|show|list|delete`:
 * the verifier's named runtime-policy and refstate stores (spec §4.4–4.5).
 */
export function registerPolicyStoreCommands(tenant: Command, context: CliContext): void {
  const allowlist = tenant.command('allowlist').description("the verifier's named runtime policies");
  connection(allowlist.command('add').description('store a runtime policy (JSON, DSSE envelope or flat allowlist)'))
    .requiredOption('--name <name>', 'policy name')
    .requiredOption('--file <file>', 'policy file')
    .option('--signing-key <file>', 'PEM key or certificate a signed (DSSE) policy verifies with')
    .option('--excludelist <file>', 'exclude regexes added to the policy')
    .option('--update', 'replace the stored policy of that name')
    .action((options: ConnectionOptions & { name: string; file: string; signingKey?: string; excludelist?: string; update?: boolean }) =>
      withTenant(options, async (client) => {
        let text = await readText(options.file, '--file');
        if (options.excludelist !== undefined) {
          if (options.signingKey !== undefined) {
            throw new InvalidParameterValue('--excludelist', 'cannot be added to a signed policy (--signing-key): put the excludes in the policy before it is signed');
          }
          text = JSON.stringify(loadRuntimePolicy(text, { excludeListText: await readText(options.excludelist, '--excludelist') }).policy);
        }
        await client.addRuntimePolicy(options.name, text, {
          ...(options.signingKey === undefined ? {} : { keyPem: await readText(options.signingKey, '--signing-key') }),
          update: options.update === true,
        });
        process.stdout.write(`${options.update === true ? 'updated' : 'stored'} runtime policy ${options.name}\n`);
        context.setExitCode(EXIT_VALID);
      }),
    );
  connection(allowlist.command('show').description('print a stored runtime policy'))
    .requiredOption('--name <name>', 'policy name')
    .action((options: ConnectionOptions & { name: string }) =>
      withTenant(options, async (client) => {
        printJson(await client.showRuntimePolicy(options.name));
        context.setExitCode(EXIT_VALID);
      }),
    );
  connection(allowlist.command('list').description('print the names of the stored runtime policies')).action((options: ConnectionOptions) =>
    withTenant(options, async (client) => {
      printJson({ 'runtimepolicy names': await client.listRuntimePolicies() });
      context.setExitCode(EXIT_VALID);
    }),
  );
  connection(allowlist.command('delete').description('delete a stored runtime policy no agent uses'))
    .requiredOption('--name <name>', 'policy name')
    .action((options: ConnectionOptions & { name: string }) =>
      withTenant(options, async (client) => {
        await client.deleteRuntimePolicy(options.name);
        process.stdout.write(`deleted runtime policy ${options.name}\n`);
        context.setExitCode(EXIT_VALID);
      }),
    );

  const mbpolicy = tenant.command('mbpolicy').description("the verifier's named measured-boot refstates");
  connection(mbpolicy.command('add').description('store a refstate (JSON)'))
    .requiredOption('--name <name>', 'policy name')
    .requiredOption('--file <file>', 'refstate file')
    .option('--update', 'replace the stored refstate of that name')
    .action((options: ConnectionOptions & { name: string; file: string; update?: boolean }) =>
      withTenant(options, async (client) => {
        await client.addMbPolicy(options.name, await readText(options.file, '--file'), { update: options.update === true });
        process.stdout.write(`${options.update === true ? 'updated' : 'stored'} measured boot policy ${options.name}\n`);
        context.setExitCode(EXIT_VALID);
      }),
    );
  connection(mbpolicy.command('show').description('print a stored refstate'))
    .requiredOption('--name <name>', 'policy name')
    .action((options: ConnectionOptions & { name: string }) =>
      withTenant(options, async (client) => {
        printJson(await client.showMbPolicy(options.name));
        context.setExitCode(EXIT_VALID);
      }),
    );
  connection(mbpolicy.command('list').description('print the names of the stored refstates')).action((options: ConnectionOptions) =>
    withTenant(options, async (client) => {
      printJson({ 'mbpolicy names': await client.listMbPolicies() });
      context.setExitCode(EXIT_VALID);
    }),
  );
  connection(mbpolicy.command('delete').description('delete a stored refstate no agent uses'))
    .requiredOption('--name <name>', 'policy name')
    .action((options: ConnectionOptions & { name: string }) =>
      withTenant(options, async (client) => {
        await client.deleteMbPolicy(options.name);
        process.stdout.write(`deleted measured boot policy ${options.name}\n`);
        context.setExitCode(EXIT_VALID);
      }),
    );
}
