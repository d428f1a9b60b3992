/**
 * The text of a small measured-boot refstate that parses: no Secure Boot, one S-CRTM digest, one kernel whose command line
 * may be anything. For tests of the policy store's routes, where only a valid body matters.
 */
export const MINIMAL_REFSTATE = JSON.stringify({
  has_secureboot: false,
  scrtm_and_bios: [{ scrtm: { sha256: `0x${'1'.repeat(64)}` }, platform_firmware: [] }],
  pk: [],
  kek: [],
  db: [],
  dbx: [],
  mokdig: [],
  mokxdig: [],
  kernels: [{ shim_authcode_sha256: `0x${'2'.repeat(64)}`, grub_authcode_sha256: `0x${'3'.repeat(64)}`, vmlinuz_plain_sha256: `0x${'4'.repeat(64)}`, initrd_plain_sha256: `0x${'5'.repeat(64)}`, kernel_cmdline: '.*' }],
});
