import { writeFileSync } from 'node:fs';
import { IronlimeError } from '../../interfaces/errors.js';
import { createRuntimePolicy } from '../ima/create-runtime-policy.js';
import { loadPolicyVerificationKey } from '../ima/dsse-envelope.js';
import { loadRuntimePolicy } from '../ima/policy-loader.js';
import { pythonJsonDumps } from '../ima/python-json.js';
import { TerminalProgress } from './terminal-progress.js';
import type { CommandRegistrar } from './cli-context.js';
import { EXIT_VALID } from './exit-codes.js';
import { readOptionFile } from './option-file.js';
import { collect } from './option-parsers.js';

interface CreateOptions {
  readonly imaLog?: string;
  readonly allowlist?: string;
  readonly excludelist?: string;
  readonly basePolicy?: string;
  readonly keyrings?: boolean;
  readonly imaBuf?: boolean;
  readonly ignoredKeyring: string[];
  readonly out?: string;
}

interface CheckOptions {
  readonly policyKey?: string;
  readonly excludelist?: string;
}

async function text(path: string | undefined, option: string): Promise<string | undefined> {
  return path === undefined ? undefined : (await readOptionFile(path, option)).toString('utf8');
}

/**
 * `ironlime policy create`: a Keylime runtime policy from a known-good node's measurement list (and
 * optionally a flat allowlist, an exclude list, a base policy), written as Keylime writes it.
 * `ironlime policy check`: loads and validates a policy (JSON, DSSE-signed, flat allowlist).
 * Exit 0 done / valid, 2 malformed input or usage.
 */
export const registerPolicyCommands: CommandRegistrar = (program, context) => {
  const policy = program.command('policy').description('Keylime runtime policies (IMA allowlists)');
  policy
    .command('create')
    .description('create a runtime policy from an IMA measurement list, a flat allowlist and/or a base policy')
    .option('--ima-log <file>', 'ASCII measurement list of a known-good node (ascii_runtime_measurements)')
    .option('--allowlist <file>', 'flat allowlist ("<digest>  <path>" lines, %keyring:<name> entries)')
    .option('--excludelist <file>', 'exclude list: one Python regex per line')
    .option('--base-policy <file>', 'JSON runtime policy to merge into')
    .option('--keyrings', "add the digests of keys loaded onto keyrings (the list's ima-buf key entries)")
    .option('--ima-buf', 'add the digests of the other ima-buf entries')
    .option('--ignored-keyring <name>', 'keyring whose keys are not checked; repeatable', collect, [])
    .option('--out <file>', 'write the policy here instead of standard output')
    .action(async (options: CreateOptions) => {
      if (options.imaLog === undefined && options.allowlist === undefined && options.basePolicy === undefined) {
        throw new IronlimeError('ERR_INVALID_PARAMETER_VALUE', 'give at least one of --ima-log, --allowlist, --base-policy');
      }
      const imaListText = await text(options.imaLog, '--ima-log');
      const allowlistText = await text(options.allowlist, '--allowlist');
      const excludeListText = await text(options.excludelist, '--excludelist');
      const basePolicyText = await text(options.basePolicy, '--base-policy');
      const progress = new TerminalProgress('policy create: IMA entries');
      const created = createRuntimePolicy({
        ...optional('imaListText', imaListText),
        ...optional('allowlistText', allowlistText),
        ...optional('excludeListText', excludeListText),
        ...optional('basePolicyText', basePolicyText),
        keyrings: options.keyrings === true,
        imaBuf: options.imaBuf === true,
        ignoredKeyrings: options.ignoredKeyring,
        onImaEntry: (done, total) => progress.update(done, total),
      });
      progress.finish();
      const json = pythonJsonDumps(created.policy);
      if (options.out === undefined) {
        process.stdout.write(`${json}\n`);
      } else {
        try {
          writeFileSync(options.out, json);
        } catch (error) {
          throw new IronlimeError('ERR_INVALID_PARAMETER_VALUE', `cannot write ${options.out}: ${(error as Error).message}`);
        }
        const paths = Object.keys(created.policy.digests).length;
        process.stderr.write(`wrote ${options.out}: ${paths} path(s), ${created.digestAlgorithm} digests\n`);
      }
      context.setExitCode(EXIT_VALID);
    });
  policy
    .command('check')
    .description('load and validate a runtime policy (Keylime JSON, DSSE-signed JSON, or flat allowlist)')
    .argument('<file>', 'the policy')
    .option('--policy-key <file>', 'PEM public key or certificate a signed policy must verify with')
    .option('--excludelist <file>', 'exclude list to validate with it')
    .action(async (file: string, options: CheckOptions) => {
      const keyText = await text(options.policyKey, '--policy-key');
      const excludeListText = await text(options.excludelist, '--excludelist');
      const loaded = loadRuntimePolicy((await readOptionFile(file, '<file>')).toString('utf8'), {
        ...(keyText === undefined ? {} : { signingKey: loadPolicyVerificationKey(keyText) }),
        ...optional('excludeListText', excludeListText),
      });
      const p = loaded.policy;
      process.stdout.write(
        `valid ${loaded.format}: ${Object.keys(p.digests).length} path(s), ${p.excludes.length} exclude(s), ` +
          `${Object.keys(p.keyrings).length} keyring(s), log_hash_alg ${p.ima.log_hash_alg}\n`,
      );
      context.setExitCode(EXIT_VALID);
    });
};

function optional<K extends string>(key: K, value: string | undefined): Partial<Record<K, string>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, string>);
}
