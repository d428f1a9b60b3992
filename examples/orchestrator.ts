// Runnable example: `node dist/examples/orchestrator.js --nodes nodes.json [--config ironlime.json] [--ek-ca-dir DIR]…`.
// It imports only the package's public entry point (and Node's standard library).
import { readFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { createDatabase, ExampleOrchestrator, loadConfig, STATES, type DriverInfo, type Transition } from '../index.js';

/** One entry of the nodes file. */
interface NodeEntry {
  readonly name: string;
  readonly attestationInterface?: string | null;
  readonly driverInfo?: DriverInfo;
  /** What the node's ramdisk would report about its Keylime agent. */
  readonly agent?: { readonly uuid: string; readonly address?: string; readonly port?: number };
}

const USAGE = 'usage: orchestrator --nodes <nodes.json> [--config <ironlime.json>] [--ek-ca-dir <dir>]...';

/** Prints one transition: `rack1-u1  cleaning -> available  (attestation passed (keylime))`. */
export function formatTransition(transition: Transition): string {
  const name = (transition.node.name ?? transition.node.uuid).padEnd(12);
  const detail = transition.detail === undefined ? '' : `  (${transition.detail})`;
  return `${name} ${transition.from} -> ${transition.to}${detail}`;
}

/**
 * Enrols the nodes of the file (configuration from `--config` and the `IRONLIME_*` variables), walks
 * each through cleaning and deployment, prints every transition, and resolves to 0 when every node
 * ends `active`, 1 otherwise. Each `--ek-ca-dir` is a folder of EK CA certificates the keylime
 * driver trusts besides the shipped vendor store (an emulated node's `ek-ca`, as the registrar's),
 * as are the config's `keylime.extraEkCaDirs`.
 */
export async function runExample(argv: readonly string[], print: (line: string) => void): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: { nodes: { type: 'string' }, config: { type: 'string' }, 'ek-ca-dir': { type: 'string', multiple: true } },
  });
  if (values.nodes === undefined) {
    print(USAGE);
    return 2;
  }
  const entries = JSON.parse(await readFile(values.nodes, 'utf8')) as NodeEntry[];
  const config = loadConfig({ ...(values.config === undefined ? {} : { file: values.config }), env: process.env });
  const database = await createDatabase({ dataDir: config.dataDir, ...(config.databaseUrl === undefined ? {} : { url: config.databaseUrl }) });
  try {
    const orchestrator = await ExampleOrchestrator.create({
      config,
      database,
      keylime: { extraEkCaDirs: values['ek-ca-dir'] ?? [] },
      onTransition: (t) => print(formatTransition(t)),
    });
    let active = 0;
    for (const entry of entries) {
      const node = await orchestrator.enrollNode({
        name: entry.name,
        attestationInterface: entry.attestationInterface ?? null,
        driverInfo: entry.driverInfo ?? {},
      });
      if (entry.agent !== undefined) {
        await orchestrator.reportAgent(node.uuid, entry.agent);
      }
      const cleaned = await orchestrator.clean(node.uuid);
      const deployed = cleaned.provisionState === STATES.available ? await orchestrator.deploy(node.uuid) : cleaned;
      active += deployed.provisionState === STATES.active ? 1 : 0;
    }
    print(`${active} of ${entries.length} node(s) active`);
    return active === entries.length ? 0 : 1;
  } finally {
    await database.close();
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  runExample(process.argv.slice(2), (line) => process.stdout.write(`${line}\n`)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`orchestrator: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exitCode = 2;
    },
  );
}
