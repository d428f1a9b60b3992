import { createHash, randomBytes } from 'node:crypto';

/** A file an emulated node "runs": its path and the SHA-256 of its content. */
export interface DemoFile {
  readonly path: string;
  /** 64 lowercase hex digits. */
  readonly digest: string;
}

/** What a freshly provisioned node runs on its way to a login prompt. */
const KNOWN_GOOD_PATHS: readonly string[] = [
  '/usr/lib/systemd/systemd',
  '/usr/lib/x86_64-linux-gnu/libc.so.6',
  '/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2',
  '/usr/bin/bash',
  '/usr/sbin/sshd',
  '/usr/bin/ls',
  '/usr/bin/cat',
  '/usr/bin/ps',
  '/usr/bin/ironic-python-agent',
  '/usr/bin/keylime_agent',
];

/**
 * The demo's known-good software: every node runs only these files (their digests derived from the
 * path, so every run and every node agrees), and the runtime policy is made from a node that ran them.
 */
export function knownGoodFiles(): readonly DemoFile[] {
  return KNOWN_GOOD_PATHS.map((path) => ({ path, digest: createHash('sha256').update(`ironlime demo known-good content of ${path}`).digest('hex') }));
}

/** The tampering: a binary that is in no policy, with content nobody has seen before. */
export function evilFile(): DemoFile {
  return { path: '/tmp/evil', digest: randomBytes(32).toString('hex') };
}
