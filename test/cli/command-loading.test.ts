import { expect } from 'chai';
import { buildProgram } from '../../lib/cli/main.js';

const CONTEXT = { setExitCode: (): void => undefined };

describe('CLI: each command loaded only when it runs', () => {
  it('builds only the command argv names, with its sub-commands', async () => {
    const program = await buildProgram(CONTEXT, ['node', 'ironlime', 'kbs', 'get', 'kbs:///a/b/c']);
    expect(program.commands.map((command) => command.name())).to.deep.equal(['kbs']);
    expect(program.commands[0]?.commands.length).to.be.greaterThan(0);
  });

  it('builds every command for the top-level help, no command, or a name that is none', async () => {
    for (const argv of [['node', 'ironlime', '--help'], ['node', 'ironlime'], ['node', 'ironlime', 'tenat'], ['node', 'ironlime', 'help', 'tenant']]) {
      const names = (await buildProgram(CONTEXT, argv)).commands.map((command) => command.name());
      expect(names, argv.join(' ')).to.include.members(['ca', 'tenant', 'verifier', 'kbs', 'token']);
      expect(names, argv.join(' ')).to.have.length(16);
    }
  });
});
