import type { ServiceTls } from './service-tls.js';

/**
 * A service's certificate, key and CA as they are now: `replace` swaps in a renewed set and every
 * later read (the next connection a client opens) sees it. Hand this object itself to the clients,
 * not a copy of its fields, or they keep the old certificate.
 */
export class RenewableTls implements ServiceTls {
  private tls: ServiceTls;

  constructor(initial: ServiceTls) {
    this.tls = initial;
  }

  get ca(): string {
    return this.tls.ca;
  }

  get cert(): string {
    return this.tls.cert;
  }

  get key(): string {
    return this.tls.key;
  }

  replace(next: ServiceTls): void {
    this.tls = { ca: next.ca, cert: next.cert, key: next.key };
  }
}
