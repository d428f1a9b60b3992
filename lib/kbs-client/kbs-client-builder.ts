import { InvalidConfig } from '../../interfaces/errors.js';
import type { EvidenceProvider } from './evidence-provider.js';
import { KbsClient, type KbsMode } from './kbs-client.js';
import { KbsHttp } from './kbs-http.js';
import type { TeeKeyKind } from './tee-key-pair.js';

/**
 * Builds a `KbsClient` (guest-components `KbsClientBuilder` shape):
 *
 *     const { client, close } = new KbsClientBuilder('https://broker:8080').ca(pem).evidenceProvider(tpm).build();
 *     const key = await client.getResource('kbs:///node/disk-key/rack4-u12');
 *     await close(); // the HTTPS connections
 *
 * Passport mode: `.mode('passport').issuer('https://issuer:8080', issuerCaPem)`.
 */
export class KbsClientBuilder {
  private caPem: string | undefined;
  private provider: EvidenceProvider | undefined;
  private chosenMode: KbsMode = 'background';
  private issuerUrl: string | undefined;
  private issuerCa: string | undefined;
  private keyKind: TeeKeyKind = 'ec';

  constructor(private readonly url: string) {}

  ca(pem: string): this {
    this.caPem = pem;
    return this;
  }

  evidenceProvider(provider: EvidenceProvider): this {
    this.provider = provider;
    return this;
  }

  mode(mode: KbsMode): this {
    this.chosenMode = mode;
    return this;
  }

  /** The token issuer for passport mode (default: the resource broker itself). */
  issuer(url: string, caPem?: string): this {
    this.issuerUrl = url;
    this.issuerCa = caPem;
    return this;
  }

  teeKey(kind: TeeKeyKind): this {
    this.keyKind = kind;
    return this;
  }

  /** @throws InvalidConfig without an evidence provider or with a broker URL `requireBrokerUrl` refuses. */
  build(): { client: KbsClient; close(): Promise<void> } {
    if (this.provider === undefined) {
      throw new InvalidConfig('kbs client', 'an evidence provider is required');
    }
    for (const url of [this.url, this.issuerUrl]) {
      if (url !== undefined) requireBrokerUrl(url);
    }
    const broker = new KbsHttp({ url: this.url, ...(this.caPem === undefined ? {} : { ca: this.caPem }) });
    const issuerCa = this.issuerCa ?? this.caPem;
    const issuer =
      this.issuerUrl === undefined ? undefined : new KbsHttp({ url: this.issuerUrl, ...(issuerCa === undefined ? {} : { ca: issuerCa }) });
    const client = new KbsClient({
      broker,
      ...(issuer === undefined ? {} : { issuer }),
      evidence: this.provider,
      mode: this.chosenMode,
      teeKeyKind: this.keyKind,
    });
    return {
      client,
      close: async () => {
        await broker.close();
        await issuer?.close();
      },
    };
  }
}

/**
 * An `https://` URL with a host and no credentials, query or fragment: `/kbs/v0/...` is appended to it,
 * so a query or fragment would swallow that path, and credentials would be printed in every error.
 * @throws InvalidConfig naming the fault, not the URL's credentials
 */
function requireBrokerUrl(url: string): void {
  const parsed = URL.parse(url);
  if (parsed !== null && (parsed.username !== '' || parsed.password !== '')) {
    throw new InvalidConfig('kbs client', 'broker URL must not carry credentials');
  }
  if (parsed === null || parsed.protocol !== 'https:' || parsed.hostname === '') {
    throw new InvalidConfig('kbs client', `broker URL must be https: ${url}`);
  }
  if (url.includes('?') || url.includes('#')) {
    throw new InvalidConfig('kbs client', `broker URL must not have a query or fragment: ${url}`);
  }
}
