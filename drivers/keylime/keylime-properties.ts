/**
 * The `driver_info` fields of the keylime driver, after the Ironic attestation spec (`keylime_allowlist`,
 * `keylime_allowlist_checksum`, `keylime_excludelist`, `keylime_agent_uuid`, …) plus the service
 * endpoints and TLS files, which default to the `keylime` config section. Descriptions end in
 * "Required." or "Optional." as Ironic's `get_properties()` does.
 */
export const REQUIRED_PROPERTIES: Readonly<Record<string, string>> = Object.freeze({
  keylime_allowlist:
    'Flat allowlist ("<sha256 hex> <path>" lines) the node\'s IMA log is checked against: a local file path or an http(s) URL. ' +
    'May be left out when keylime_runtime_policy is given instead. Required.',
  keylime_allowlist_checksum:
    'sha256 (64 hex digits) of the allowlist file; the fetched document must match it before anything is sent. ' +
    'Required with keylime_allowlist. Required.',
  keylime_agent_uuid:
    'Keylime agent id of the node\'s agent, as registered at the registrar. The ramdisk may supply it through ' +
    'KeylimeAttestation.locateAgent() or the agentLocator option, which store it here. Required.',
});

export const OPTIONAL_PROPERTIES: Readonly<Record<string, string>> = Object.freeze({
  keylime_excludelist:
    'Exclude list (one Python regular expression per line; matching paths are not checked): a local file path or an http(s) URL. Optional.',
  keylime_excludelist_checksum: 'sha256 (64 hex digits) the fetched exclude list must match. Optional.',
  keylime_runtime_policy:
    'A Keylime JSON runtime policy (local path or http(s) URL) used instead of keylime_allowlist; keylime_excludelist is added to its excludes. Optional.',
  keylime_runtime_policy_checksum: 'sha256 (64 hex digits) of the runtime policy file. Required with keylime_runtime_policy. Optional.',
  keylime_mb_refstate:
    'Measured-boot reference state (Keylime "example" policy JSON, as made by create_mb_policy or `ironlime mb refstate`): a local path or an http(s) URL. Optional.',
  keylime_mb_refstate_checksum: 'sha256 (64 hex digits) the fetched refstate must match. Optional.',
  keylime_tpm_policy:
    'PCR policy as Keylime JSON text, e.g. {"0": ["<hex>"], "7": ["<hex>"]}; PCRs 10 and 16 are not allowed. Optional.',
  keylime_agent_address:
    'IP address or host name the verifier reaches the agent at. Defaults to the address the agent registered. Optional.',
  keylime_agent_port: 'Port (1-65535) of the agent. Defaults to the port the agent registered. Optional.',
  keylime_agent_mode:
    '"pull" (default: the verifier polls the agent) or "push" (the agent attests itself over API 3.0 and opens no port; keylime_agent_address and keylime_agent_port are then not used). Optional.',
  keylime_verifier_url: 'Verifier URL (https://host:8881). Defaults to keylime.verifierUrl from the config; one of the two is needed. Optional.',
  keylime_registrar_url:
    'Registrar TLS URL (https://host:8891). Defaults to keylime.registrarUrl from the config; one of the two is needed. Optional.',
  keylime_tls_ca: 'PEM file of the CA the verifier\'s and registrar\'s certificates chain to. Defaults to keylime.tlsCaCert. Optional.',
  keylime_tls_cert:
    'PEM client certificate for mTLS to the verifier, the registrar and the agent (issued by the CA agents trust). Defaults to keylime.tlsClientCert; one of the two is needed. Optional.',
  keylime_tls_key: 'PEM private key of keylime_tls_cert. Defaults to keylime.tlsClientKey; one of the two is needed. Optional.',
  keylime_minimum_trust_level:
    'The weakest trust level this node may be cleaned and deployed at (hardware-tpm, emulated-tpm, id-secret, id-only): an operator accepting a lower level, or demanding a higher one. Wins over attestation.minimumTrustLevel. Optional.',
});
