/**
 * Each agent setting is declared once (SETTINGS in agent/config.ts): the zod schema, the flags of `agent` and `run`,
 * the environment variables and the table in docs/agent.md all come from it. These tests keep them in step.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { configFromOptions, register } from '../../agent/cli';
import { AgentConfigSchema, ENV_VARS, SETTINGS, settingsMarkdown, type Setting } from '../../agent/config';

const TOKEN = `pss_service:v2:${'a'.repeat(64)}:${'b'.repeat(64)}:${'c'.repeat(64)}:${'d'.repeat(64)}`;
const rows = SETTINGS as readonly Setting[];

test('docs/agent.md holds the table generated from SETTINGS', () => {
  const docs = readFileSync(join(__dirname, '../../docs/agent.md'), 'utf8');
  const table = settingsMarkdown();
  // On a mismatch, paste the output of settingsMarkdown() into docs/agent.md ("Configuration").
  expect(docs.includes(table) ? table : docs).toBe(table);
});

test('every schema key, flag and environment variable comes from a row', () => {
  const keys = Object.keys(AgentConfigSchema._def.schema.shape);
  expect(keys.sort()).toEqual([...new Set(rows.filter((r) => r.schema).map((r) => r.key))].sort());
  // Every key is documented in some row.
  for (const k of keys) expect(rows.some((r) => r.key === k && r.doc)).toBe(true);
  const program = new Command().enablePositionalOptions(); // as bin/cli.ts builds it
  register(program);
  const flagsOf = (name: string): string[] =>
    program.commands.find((c) => c.name() === name)!.options.map((o) => o.long as string);
  const declared = new Set(rows.flatMap((r) => (r.flag ? [r.flag.decl.split(' ')[0]] : [])));
  // Besides the settings: the config file itself; run's own options.
  const own = new Set([
    '--config',
    '--on-change',
    '--signal',
    '--debounce',
    '--kill-grace',
    '--shell',
    '--run-scope',
  ]);
  for (const f of [...flagsOf('agent'), ...flagsOf('run')]) expect(own.has(f) || declared.has(f)).toBe(true);
  for (const r of rows) if (r.flag) expect(flagsOf('agent')).toContain(r.flag.decl.split(' ')[0]);
  for (const r of rows.filter((x) => x.flag && !x.flag.agentOnly))
    expect(flagsOf('run')).toContain(r.flag!.decl.split(' ')[0]);
  expect(Object.keys(ENV_VARS).sort()).toEqual(rows.flatMap((r) => r.env ?? []).sort());
});

test('flags through the table: negations only when given, numbers, repeatable lists, render, no-tcp', () => {
  const env = { PHASE_SERVICE_TOKEN: TOKEN, PHASE_APP: 'a', PHASE_ENV: 'b' };
  const base = configFromOptions({ snapshot: true, push: true, resolveReferences: true, tcp: true }, env);
  expect([base.snapshot, base.push, base.resolveReferences, base.noTcp]).toEqual([true, true, true, false]);
  const c = configFromOptions(
    {
      snapshot: false,
      push: false,
      resolveReferences: false,
      tcp: false,
      socket: '/tmp/agent.sock',
      jitter: '0.2',
      budgetPushBurst: '3',
      allowedHost: ['a.example', 'b.example'],
      template: ['t.hbs:/tmp/t.out:0640'],
      render: '/tmp/r.env',
      format: 'json',
      renderScope: 'a/b',
    },
    env,
  );
  expect(c).toMatchObject({
    snapshot: false,
    push: false,
    resolveReferences: false,
    noTcp: true,
    jitter: 0.2,
    budgetPushBurst: 3,
    allowedHosts: ['a.example', 'b.example'],
    render: { file: '/tmp/r.env', format: 'json', scope: 'a/b' },
  });
  expect(c.templates[0]).toMatchObject({ dest: '/tmp/t.out', mode: 0o640 });
  // Where a bad value came from is still named by its flag.
  expect(() => configFromOptions({ budgetPushBurst: '-1' }, env)).toThrow(
    /budgetPushBurst \(--budget-push-burst\)/,
  );
});
