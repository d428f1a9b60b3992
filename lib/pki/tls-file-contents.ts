import { createPrivateKey, type KeyObject } from 'node:crypto';
import { pemCertificates } from './pem-certificate.js';

/** The file at fault (`ca`, `cert` or `key`) and what is wrong with it, said of the file. */
export type TlsFileProblem = { readonly file: 'ca' | 'cert' | 'key'; readonly detail: string };

/**
 * What is wrong with the PEM texts a TLS client is given (a CA, a client certificate and its key), said
 * of the file at fault, or undefined when a TLS context can take them. Checked when the files are read,
 * so that a certificate given as the key, a key given as the certificate, or a key of another
 * certificate is named, instead of surfacing as an OpenSSL error (`DECODER routines::unsupported`,
 * `key values mismatch`) from deep inside the first connection.
 */
export function tlsFileProblem(pem: { readonly ca?: string | undefined; readonly cert?: string | undefined; readonly key?: string | undefined }): TlsFileProblem | undefined {
  if (pem.ca !== undefined && pemCertificates(pem.ca, { textOutsideBlocks: true }) === undefined) {
    return { file: 'ca', detail: 'holds no readable PEM certificate' };
  }
  const certificate = pem.cert === undefined ? undefined : pemCertificates(pem.cert, { textOutsideBlocks: true })?.[0];
  if (pem.cert !== undefined && certificate === undefined) {
    return { file: 'cert', detail: 'holds no readable PEM certificate' };
  }
  let key: KeyObject | undefined;
  if (pem.key !== undefined) {
    try {
      key = createPrivateKey(pem.key);
    } catch {
      return { file: 'key', detail: 'holds no readable PEM private key (an encrypted key is not taken)' };
    }
  }
  if (certificate !== undefined && key !== undefined && !certificate.checkPrivateKey(key)) {
    return { file: 'key', detail: "is not the private key of the client certificate: its public key is not the certificate's" };
  }
  return undefined;
}
