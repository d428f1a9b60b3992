import { execFileSync, spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import knexFactory, { type Knex } from 'knex';
import { TEST_DATABASE_URL } from '../helpers/databases.js';
import { processAlive } from '../helpers/process-alive.js';

/** `dist/bench/main.js` beside this compiled test (`dist/test/fleet`). */
const BENCH_MAIN = path.resolve(import.meta.dirname, '..', '..', 'bench', 'main.js');

/** The verifier child of `benchPid`: its pid, schema and data dir, read from its command line. */
function verifierChild(benchPid: number): { pid: number; schema: string; dataDir: string } | undefined {
  const listing = execFileSync('ps', ['-eo', 'pid=,ppid=,args='], { encoding: 'utf8' });
  for (const line of listing.split('\n')) {
    const [pid, ppid, ...args] = line.trim().split(/\s+/);
    if (Number(ppid) !== benchPid || !args.includes('--serve-verifier')) continue;
    const value = (flag: string): string => args[args.indexOf(flag) + 1] as string;
    return { pid: Number(pid), schema: value('--schema'), dataDir: value('--data-dir') };
  }
  return undefined;
}

async function until<T>(what: string, deadlineMs: number, read: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const value = await read();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/**
 * `npm run bench -- verifier` stopped by Ctrl-C (SIGINT to its process group, the verifier child too)
 * or by SIGTERM to the benchmark alone, in its warm-up: it ended on the spot and left its schema in
 * the shared database and its data dir (the CA's keys) in the temporary folder.
 */
describe('bench verifier: interrupted in the warm-up', function () {
  this.timeout(300_000);
  let admin: Knex;

  before(function () {
    admin = knexFactory({ client: 'pg', connection: TEST_DATABASE_URL, pool: { min: 0, max: 1 } });
  });

  after(async function () {
    await admin.destroy();
  });

  const schemaExists = async (schema: string): Promise<boolean> =>
    ((await admin.raw('select 1 from pg_namespace where nspname = ?', [schema])) as { rows: unknown[] }).rows.length > 0;

  // 128 + the signal's number, as a shell reports a process the signal ended.
  for (const { signal, group, code } of [
    { signal: 'SIGINT', group: true, code: 130 },
    { signal: 'SIGTERM', group: false, code: 143 },
  ] as const) {
    it(`on ${signal} to ${group ? 'its process group' : 'the benchmark alone'}: stops the verifier, drops the schema, removes the data dir, exits ${code}`, async function () {
      const bench = spawn(
        process.execPath,
        [BENCH_MAIN, 'verifier', '--agents', '2', '--seconds', '600', '--warmup', '600', '--quote-interval', '1', '--tamper', '0', '--database', TEST_DATABASE_URL],
        { stdio: ['ignore', 'pipe', 'pipe'], detached: true },
      );
      let output = '';
      bench.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
      bench.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => bench.once('exit', (code, end) => resolve({ code, signal: end })));
      const benchPid = bench.pid as number;
      let child: { pid: number; schema: string; dataDir: string } | undefined;
      try {
        child = await until('the verifier child', 120_000, async () => verifierChild(benchPid));
        // Both agents enrolled: the benchmark is in (or entering) its warm-up.
        await until('the fleet enrolled', 180_000, async () => {
          const schema = (child as { schema: string }).schema;
          if (!(await schemaExists(schema))) return undefined;
          const [row] = (await admin.withSchema(schema).table('verifier_agents').count({ n: '*' }).catch(() => [{ n: 0 }])) as { n: string | number }[];
          return Number(row?.n) >= 2 ? true : undefined;
        });
        process.kill(group ? -benchPid : benchPid, signal);
        const end = await exited;
        expect(end, output).to.deep.equal({ code, signal: null });
        expect(output).to.include(`interrupted by ${signal}`);
        expect(await schemaExists(child.schema), 'schema dropped').to.equal(false);
        expect(existsSync(child.dataDir), 'data dir removed').to.equal(false);
        const verifierPid = child.pid;
        await until('the verifier child to end', 30_000, async () => (processAlive(verifierPid) ? undefined : true));
      } finally {
        if (bench.exitCode === null && bench.signalCode === null) process.kill(-benchPid, 'SIGKILL');
        // Left by a failed run only.
        if (child !== undefined) {
          await admin.raw('drop schema if exists ?? cascade', [child.schema]);
          rmSync(child.dataDir, { recursive: true, force: true });
        }
      }
    });
  }
});
