/** Every command of `phase-bridge`, in every part, shows an example in its `--help` (issue 15). */
import type { Command } from 'commander';
import { buildProgram } from '../../bin/cli';

function all(cmd: Command, path = ''): Array<[string, Command]> {
  return cmd.commands.flatMap((c) => {
    const name = `${path} ${c.name()}`.trim();
    return [[name, c] as [string, Command], ...all(c, name)];
  });
}

test('every command’s --help shows an example', () => {
  const program = buildProgram();
  const commands = all(program);
  expect(commands.length).toBeGreaterThan(15);
  const missing: string[] = [];
  for (const [name, cmd] of commands) {
    let out = '';
    cmd.configureOutput({ writeOut: (s) => (out += s), writeErr: (s) => (out += s) });
    cmd.outputHelp();
    if (!/Examples?:\n {2}\$ /.test(out)) missing.push(name);
  }
  expect(missing).toEqual([]);
});
