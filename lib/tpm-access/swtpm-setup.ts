import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { makeFolderPrivate } from './private-folder.js';
import { TpmAccessError } from './tpm-access-error.js';
import type { TpmHashAlgorithm } from './tpm-port.js';

/** Where swtpm's local CA keeps its keys and certificates, and the PEMs a registrar should trust. */
export interface LocalCaCertificates {
  /** The self-signed root (`swtpm-localca-rootca-cert.pem`). */
  rootPath: string;
  rootPem: string;
  /** The intermediate that signs EK and platform certificates (`issuercert.pem`). */
  intermediatePath: string;
  intermediatePem: string;
}

export interface ManufactureOptions {
  /** Absolute TPM state directory; left untouched if it already holds a TPM 2 state file. */
  stateDir: string;
  /** Absolute directory for the local CA (created on first use, shared by every TPM given it). */
  caDir: string;
  /** Create the RSA and ECC EKs with certificates, a platform certificate, and lock the NV. */
  createEk: boolean;
  /** PCR banks to activate; the others are switched off. */
  pcrBanks: readonly TpmHashAlgorithm[];
  timeoutMs: number;
}

/** swtpm's TPM 2 state file: its presence means the TPM was manufactured already. */
const STATE_FILE = 'tpm2-00.permall';

/**
 * Manufactures a swtpm TPM 2 state with `swtpm_setup`, issuing the EK certificates through
 * `swtpm_localca` from a CA kept in `caDir` instead of `/var/lib/swtpm-localca`: we write our own
 * `swtpm_setup.conf` (pointing at our `swtpm-localca.conf` and `.options`) and pass it with `--config`.
 * `swtpm_localca` creates a root CA and an intermediate signing key there on first use.
 * Returns false when the state existed already (a "reboot" keeps the TPM's identity). Either way the
 * state folder is left with mode 0700.
 */
export async function manufactureSwtpm(options: ManufactureOptions): Promise<boolean> {
  const { stateDir, caDir } = options;
  for (const dir of [stateDir, caDir]) {
    if (!path.isAbsolute(dir) || dir.includes(',')) {
      // swtpm splits option values on commas and resolves paths after changing directory.
      throw new TpmAccessError(`swtpm directory must be absolute and free of commas: ${dir}`);
    }
  }
  // swtpm writes the state (the TPM's seeds) and swtpm_localca the CA keys with mode 0640: only
  // folders of mode 0700 keep them from the group, whatever the folder above allows. mkdir's mode
  // covers only the folders it creates: a state folder that exists already (made before, or by an
  // operator) is narrowed too, before swtpm writes into it.
  await makeFolderPrivate(stateDir, 'the swtpm state folder', true);
  if (existsSync(path.join(stateDir, STATE_FILE))) {
    return false;
  }
  const config = await writeLocalCaConfig(caDir);
  const args = ['--tpm2', '--tpmstate', stateDir, '--config', config, '--pcr-banks', options.pcrBanks.join(',')];
  if (options.createEk) {
    args.push('--create-ek-cert', '--create-platform-cert', '--lock-nvram');
  }
  await new Promise<void>((resolve, reject) => {
    execFile('swtpm_setup', args, { timeout: options.timeoutMs, killSignal: 'SIGKILL' }, (error, _stdout, stderr) => {
      if (error === null) {
        resolve();
        return;
      }
      const detail = error.code === 'ENOENT' ? 'not found; install swtpm-tools' : stderr.trim().split('\n').slice(-3).join(' | ');
      reject(new TpmAccessError(`swtpm_setup: ${detail}`, { cause: error }));
    });
  });
  return true;
}

/** The local CA's certificates in `caDir` (throws if no EK was ever certified there). */
export async function readLocalCaCertificates(caDir: string): Promise<LocalCaCertificates> {
  const rootPath = path.join(caDir, 'swtpm-localca-rootca-cert.pem');
  const intermediatePath = path.join(caDir, 'issuercert.pem');
  try {
    return {
      rootPath,
      rootPem: await readFile(rootPath, 'utf8'),
      intermediatePath,
      intermediatePem: await readFile(intermediatePath, 'utf8'),
    };
  } catch (error) {
    throw new TpmAccessError(`swtpm local CA in ${caDir} has no certificates (was an EK certified?)`, { cause: error });
  }
}

/**
 * Writes the three config files (swtpm_setup(8) "--config", swtpm-localca.conf(8),
 * swtpm-localca.options(8)) into `caDir` and returns the swtpm_setup.conf path. Files are written to a
 * temp name and renamed, so TPMs manufactured in parallel against one CA never read half a file.
 */
async function writeLocalCaConfig(caDir: string): Promise<string> {
  await mkdir(caDir, { recursive: true, mode: 0o700 });
  const localcaConf = path.join(caDir, 'swtpm-localca.conf');
  const localcaOptions = path.join(caDir, 'swtpm-localca.options');
  const setupConf = path.join(caDir, 'swtpm_setup.conf');
  await atomicWrite(
    localcaConf,
    [
      `statedir = ${caDir}`,
      `signingkey = ${path.join(caDir, 'signkey.pem')}`,
      `issuercert = ${path.join(caDir, 'issuercert.pem')}`,
      `certserial = ${path.join(caDir, 'certserial')}`,
    ],
  );
  await atomicWrite(localcaOptions, ['--platform-manufacturer ironlime', '--platform-version 2.1', '--platform-model swtpm']);
  await atomicWrite(setupConf, [
    'create_certs_tool = swtpm_localca',
    `create_certs_tool_config = ${localcaConf}`,
    `create_certs_tool_options = ${localcaOptions}`,
  ]);
  return setupConf;
}

async function atomicWrite(file: string, lines: readonly string[]): Promise<void> {
  const temp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}`;
  await writeFile(temp, `${lines.join('\n')}\n`);
  await rename(temp, file);
}
