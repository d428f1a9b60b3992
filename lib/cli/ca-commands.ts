import { X509Certificate } from 'node:crypto';
import { Option } from 'commander';
import { initCa, issueCertificate, loadCa } from '../pki/ca-directory.js';
import { withIssueLock } from '../pki/issue-lock.js';
import type { CertificateType } from '../pki/certificate-authority.js';
import { caExpiryWarning, validityOf } from '../pki/certificate-validity.js';
import type { CommandRegistrar } from './cli-context.js';
import { EXIT_VALID } from './exit-codes.js';

interface IssueOptions {
  readonly dir: string;
  readonly name: string;
  readonly type: CertificateType;
  readonly san: string[];
}

/**
 * `ironlime ca init` and `ironlime ca issue`: a file-based CA for the services' mTLS, laid out as
 * Keylime's `keylime_ca` lays it out (`cacert.crt`, `ca-private.pem`, `<name>-cert.crt`, `<name>-private.pem`).
 */
export const registerCaCommands: CommandRegistrar = (program, context) => {
  const ca = program.command('ca').description('certificate authority for mTLS between ironlime services');
  ca.command('init')
    .description('create a CA in DIR (cacert.crt, ca-private.pem with mode 0600) unless one is there')
    .requiredOption('--dir <dir>', 'CA folder')
    .action(async (options: { dir: string }) => {
      const result = await initCa(options.dir);
      process.stdout.write(`${result.created ? 'created CA' : 'CA already present'}: ${result.certPath}\n`);
      const warning = caExpiryWarning(`CA ${result.certPath}`, validityOf(new X509Certificate(result.certPem)), Date.now());
      if (warning !== undefined) process.stderr.write(`ironlime: warning: ${warning}\n`);
      context.setExitCode(EXIT_VALID);
    });
  ca.command('issue')
    .description('issue a server or client certificate signed by the CA in DIR')
    .requiredOption('--dir <dir>', 'CA folder (created with `ironlime ca init`)')
    .requiredOption('--name <name>', 'certificate name: CN and file stem (<name>-cert.crt, <name>-private.pem)')
    .addOption(new Option('--type <type>', 'server (serverAuth) or client (clientAuth)').choices(['server', 'client']).makeOptionMandatory())
    .option('--san <name>', 'subject alternative name, DNS name or IP (repeatable)', (value: string, all: string[]) => [...all, value], [])
    .action(async (options: IssueOptions) => {
      // A folder that does not exist says "no CA" and how to make one, not that its lock file cannot be created.
      await loadCa(options.dir);
      // The lock the services take to renew `<name>`: a running one never reads this key beside the old certificate.
      const issued = await withIssueLock(options.dir, options.name, () => issueCertificate({ caDir: options.dir, name: options.name, type: options.type, sans: options.san }));
      process.stdout.write(`certificate: ${issued.certPath}\nprivate key: ${issued.keyPath}\n`);
      context.setExitCode(EXIT_VALID);
    });
};
