import { mkdirSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { EXIT_USAGE } from '../../lib/cli/exit-codes.js';
import { MAX_OPERATOR_FILE_BYTES } from '../../lib/cli/option-file.js';
import { runCli } from '../helpers/cli-runner.js';
import { tempDirPerTest } from '../helpers/temp-dir.js';

/** Each command and the option whose file it reads first, given `file`. */
const COMMANDS: ReadonlyArray<{ readonly option: string; readonly args: (file: string, dir: string) => string[] }> = [
  { option: '--log', args: (file) => ['ima', 'verify', '--log', file] },
  { option: '--ima-log', args: (file) => ['policy', 'create', '--ima-log', file] },
  { option: '<file>', args: (file) => ['policy', 'check', file] },
  { option: '--log', args: (file) => ['mb', 'replay', '--log', file] },
  { option: '--ak', args: (file) => ['tpm', 'verify-quote', '--ak', file, '--nonce', 'n', '--quote', file] },
  { option: '--ek', args: (file, dir) => ['tpm', 'make-credential', '--ek', file, '--ak-name', `000b${'00'.repeat(32)}`, '--secret', file, '--out', path.join(dir, 'out')] },
  { option: '--cert', args: (file) => ['tpm', 'verify-ek-cert', '--cert', file] },
  { option: '--content', args: (file, dir) => ['agent', 'ima-append', '--data-dir', dir, '--path', '/usr/bin/x', '--content', file] },
];

/**
 * The files the ima, policy, mb, tpm and agent commands read from their options: read whole with
 * readFileSync / readFile, a missing file printed Node's raw message (`ENOENT: no such file or directory,
 * open …`) without the option, a folder `EISDIR`, and a file of any size was read whole (`/dev/zero`
 * until memory ran out). Read with the tenant's bounded reader: one line naming the option, exit 2.
 */
describe('CLI option files: ima, policy, mb, tpm and agent commands', function () {
  this.timeout(60_000);
  const temp = tempDirPerTest('ironlime-option-files-');

  for (const { option, args } of COMMANDS) {
    const command = args('F', 'D').slice(0, 2).join(' ');

    it(`${command} ${option}: a missing file, a folder, a file over the bound: one line naming the option`, async () => {
      const missing = path.join(temp.path, 'absent');
      const folder = path.join(temp.path, 'folder');
      mkdirSync(folder);
      const huge = path.join(temp.path, 'huge');
      // Sparse: no disk is written; a read of it would still build a buffer past the bound.
      writeFileSync(huge, '');
      truncateSync(huge, MAX_OPERATOR_FILE_BYTES + 1);
      for (const [file, detail] of [
        [missing, `cannot read ${missing}: ENOENT`],
        [folder, `${folder} is not a file, a pipe or a character device`],
        [huge, `${huge} holds more than the ${MAX_OPERATOR_FILE_BYTES} bytes ${option} may name`],
      ] as const) {
        const run = await runCli(args(file, temp.path));
        expect(run, file).to.deep.equal({ code: EXIT_USAGE, stdout: '', stderr: `ironlime: ${option}: ${detail}\n` });
      }
    });
  }

  it('ima verify --log /dev/zero is refused once past the bound, not read until memory runs out', async () => {
    const run = await runCli(['ima', 'verify', '--log', '/dev/zero']);
    expect(run).to.deep.equal({ code: EXIT_USAGE, stdout: '', stderr: `ironlime: --log: /dev/zero holds more than the ${MAX_OPERATOR_FILE_BYTES} bytes --log may name\n` });
  });
});
