/**
 * A realistic runtime policy's excludes (what operators add to a generated Keylime policy):
 * directory prefixes, rules that start with `.*` (so the engine runs on every path), kernel-module
 * versions. Shared by the match-allowance benchmark and the tests that hold real lists to it.
 */
export const REAL_SHAPED_EXCLUDES: readonly string[] = [
  'boot_aggregate', '/tmp/.*', '/var/tmp/.*', '/var/log/.*', '/var/lib/.*', '/run/.*', '/dev/.*', '/proc/.*', '/sys/.*',
  '/root/.*', '/home/.*', '/etc/ld\\.so\\.cache', '.*\\.pyc$', '.*/__pycache__/.*', '/usr/share/.*\\.mo$', '/opt/[^/]+/cache/.*',
  '/usr/lib/python3(\\.\\d+)?/site-packages/.*\\.py$', '/snap/.*', '/var/cache/.*', '/usr/local/.*',
  ...Array.from({ length: 30 }, (_, i) => `/usr/lib/modules/5\\.${i}\\.[0-9]+-[a-z0-9]+/kernel/.*\\.ko(\\.xz)?$`),
];

const SHAPES: readonly ((i: number) => string)[] = [
  (i) => `/usr/lib/x86_64-linux-gnu/libpkg${i}.so.${i % 7}`,
  (i) => `/usr/bin/tool-${i}`,
  (i) => `/usr/lib/python3.12/site-packages/pkg${i % 97}/module_${i}.py`,
  (i) => `/usr/lib/python3.12/site-packages/pkg${i % 97}/__pycache__/module_${i}.cpython-312.pyc`,
  (i) => `/usr/lib/modules/5.${i % 30}.${i % 11}-generic/kernel/drivers/net/driver_${i}.ko.xz`,
  (i) => `/var/lib/dpkg/info/package-${i}.list`,
  (i) => `/etc/systemd/system/unit-${i}.service`,
  (i) => `/usr/share/locale/xx_${i % 50}/LC_MESSAGES/domain-${i}.mo`,
];

/** `count` distinct paths shaped as a distribution's files are (libraries, tools, Python, modules, data). */
export function realShapedPaths(count: number): string[] {
  return Array.from({ length: count }, (_, i) => (SHAPES[i % SHAPES.length] as (i: number) => string)(i));
}
