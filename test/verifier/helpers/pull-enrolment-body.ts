/**
 * The body of `POST /v2.x/agents/{id}` (spec §4.1) a tenant sends for a pull agent at 127.0.0.1
 * whose quotes cover PCR 15 only: no runtime or measured-boot policy, SHA-256 / RSA / RSASSA.
 */
export function pullEnrolmentBody(agent: { readonly port: number; readonly akTpm: string; readonly mtlsCert: string }): Record<string, unknown> {
  return {
    v: null,
    cloudagent_ip: '127.0.0.1',
    cloudagent_port: agent.port,
    tpm_policy: '{"mask": "0x8000"}',
    runtime_policy: '',
    accept_tpm_hash_algs: ['sha256'],
    accept_tpm_encryption_algs: ['rsa'],
    accept_tpm_signing_algs: ['rsassa'],
    ak_tpm: agent.akTpm,
    mtls_cert: agent.mtlsCert,
  };
}
