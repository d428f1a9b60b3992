import { decodeJwt } from 'jose';
import { InvalidParameterValue } from '../../interfaces/errors.js';
import { issueApiToken } from '../auth/api-token.js';
import { isRole, ROLES } from '../auth/roles.js';
import { loadTokenKey } from '../auth/token-signing-key.js';
import { parseTokenTtl } from '../auth/token-ttl.js';
import { verifierDataDir } from './verifier-locations.js';
import type { CommandRegistrar } from './cli-context.js';
import { EXIT_VALID } from './exit-codes.js';

interface IssueOptions {
  readonly role: string;
  readonly tenant: string;
  readonly ttl: string;
  readonly subject?: string;
  readonly dataDir?: string;
}

/** `ironlime token issue`: mints a bearer token for the verifier's admin API and dashboard. */
export const registerTokenCommands: CommandRegistrar = (program, context) => {
  program
    .command('token')
    .description('bearer tokens for the admin API and the dashboard')
    .command('issue')
    .description("mint a token signed with the verifier's token key (<data dir>/api-token-key.pem)")
    .requiredOption('--role <role>', `one of ${ROLES.join(', ')}`)
    .requiredOption('--tenant <tenant>', 'the tenant whose agents the token may see')
    .option('--ttl <duration>', 'lifetime: seconds, or with s, m, h or d', '8h')
    .option('--subject <name>', 'who the token is for (logged with every action)', 'operator')
    .option('--data-dir <dir>', "the verifier's data folder (default: $IRONLIME_VERIFIER_DATA_DIR, else $IRONLIME_DATA_DIR or ./.ironlime)")
    .action(async (options: IssueOptions) => {
      if (!isRole(options.role)) throw new InvalidParameterValue('--role', `must be one of ${ROLES.join(', ')}`);
      if (options.tenant.trim() === '') throw new InvalidParameterValue('--tenant', 'must not be empty');
      const ttlSeconds = parseTokenTtl(options.ttl);
      const key = loadTokenKey(verifierDataDir(options.dataDir));
      const token = await issueApiToken({ subject: options.subject ?? 'operator', role: options.role, tenant: options.tenant, ttlSeconds }, key.privateKey);
      process.stdout.write(`${token}\n`);
      // On stderr, so that stdout stays the token alone for scripts.
      process.stderr.write(`token id (revoke it with DELETE /v2.x/tokens/<id>): ${String(decodeJwt(token).jti)}\n`);
      context.setExitCode(EXIT_VALID);
    });
};
