import path from 'node:path';
import type { IronlimeConfig } from '../config/ironlime-config.js';
import { buildConfig } from '../config/load-config.js';
import type { DemoEnvironment } from './demo-environment.js';

export interface DemoConfigOptions {
  /** `failCleanOnAttestationFailure` and `failDeployOnAttestationFailure` (default true, as the demo runs). */
  readonly failFlags?: boolean;
  /** How long a step waits for the verifier's final verdict (default 30 s). */
  readonly statusTimeoutSeconds?: number;
}

/**
 * The orchestrator's ironlime config for a demo environment: the keylime interface only, pointed at its
 * registrar and verifier with its CA and client certificate, data under `<dir>/orchestrator`.
 */
export function demoConfig(env: DemoEnvironment, dir: string, options: DemoConfigOptions = {}): Readonly<IronlimeConfig> {
  const failFlags = options.failFlags ?? true;
  return buildConfig({
    dataDir: path.join(dir, 'orchestrator'),
    enabledAttestationInterfaces: ['keylime'],
    keylime: {
      failCleanOnAttestationFailure: failFlags,
      failDeployOnAttestationFailure: failFlags,
      verifierUrl: env.verifier.url,
      registrarUrl: env.registrar.tlsUrl,
      tlsCaCert: env.tls.caFile,
      tlsClientCert: env.tls.certFile,
      tlsClientKey: env.tls.keyFile,
      statusTimeoutSeconds: options.statusTimeoutSeconds ?? 30,
      statusPollIntervalSeconds: 1,
    },
  });
}
