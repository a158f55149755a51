/** `phase-bridge provider install` and the per-type documentation pages. */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { register } from '../../provider/cli';
import { installProvider, terraformPlatform } from '../../provider/install';
import { providerDef } from '../../provider/provider';
import { VERSION } from '../../core/version';
import { MAGIC_COOKIE, ROOT } from './plugin-client';

describe('provider install', () => {
  let home: string;
  beforeEach(() => {
    home = mkdtempSync(join(tmpdir(), 'pb-install-'));
  });
  afterEach(() => rmSync(home, { recursive: true, force: true }));

  it('writes an executable launcher into the implied local mirror via the CLI command', async () => {
    const program = new Command().exitOverride();
    register(program);
    const out: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((s: string) => out.push(String(s)) > 0) as typeof process.stdout.write;
    try {
      await program.parseAsync(['node', 'phase-bridge', 'provider', 'install', '--home', home]);
    } finally {
      process.stdout.write = write;
    }
    const path = join(
      home,
      '.terraform.d/plugins/registry.terraform.io/phase-bridge/phase',
      VERSION,
      terraformPlatform(),
      `terraform-provider-phase_v${VERSION}`,
    );
    expect(out.join('')).toContain(path);
    expect(statSync(path).mode & 0o111).toBe(0o111);
    const text = readFileSync(path, 'utf8');
    expect(text.startsWith('#!/bin/sh\n')).toBe(true);
    expect(text).toContain(join(ROOT, 'dist', 'provider', 'main.js'));
    // The launcher really starts the provider: without the cookie it explains itself and exits 1.
    const r = spawnSync(path, [], { encoding: 'utf8', env: { PATH: process.env.PATH }, timeout: 10_000 });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/This binary is a plugin/);
    // With the cookie it prints a handshake line (then we stop it).
    const ok = spawnSync(path, [], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH, TF_PLUGIN_MAGIC_COOKIE: MAGIC_COOKIE, PLUGIN_UNIX_SOCKET_DIR: home },
      timeout: 3000,
      killSignal: 'SIGKILL',
    });
    expect(ok.stdout).toMatch(/^1\|6\|unix\|[^|]+\|grpc\|\n/);
  });

  it('maps platforms to Terraform OS_ARCH names and rejects a bad version', () => {
    expect(terraformPlatform('linux', 'x64')).toBe('linux_amd64');
    expect(terraformPlatform('darwin', 'arm64')).toBe('darwin_arm64');
    expect(terraformPlatform('win32', 'x64')).toBe('windows_amd64');
    expect(() => installProvider({ home, version: 'latest' })).toThrow(/semantic version/);
    expect(existsSync(join(home, '.terraform.d'))).toBe(false);
  });
});

describe('provider documentation', () => {
  const docs = join(ROOT, 'docs', 'provider');
  const index = readFileSync(join(docs, 'index.md'), 'utf8');
  const pages: Array<
    [
      string,
      string,
      {
        typeName: string;
        schema: { block: { attributes: object; blocks?: object } };
        importIdFormat?: string;
      },
    ]
  > = [
    ...providerDef.resources.map((r) => ['resources', 'resource', r] as [string, string, typeof r]),
    ...providerDef.dataSources.map((r) => ['data-sources', 'data', r] as [string, string, typeof r]),
    ...providerDef.ephemeralResources.map(
      (r) => ['ephemeral-resources', 'ephemeral', r] as [string, string, typeof r],
    ),
  ];

  it.each(pages.map(([dir, kind, r]) => [`${kind} ${r.typeName}`, dir, kind, r] as const))(
    '%s has a page with an example, every attribute and its import id',
    (_label, dir, kind, r) => {
      const file = `${dir}/${r.typeName.replace(/^phase_/, '')}.md`;
      const text = readFileSync(join(docs, file), 'utf8');
      expect(index).toContain(`(${file})`);
      const keyword = kind === 'resource' ? 'resource' : kind === 'data' ? 'data' : 'ephemeral';
      expect(text).toContain(`${keyword} "${r.typeName}"`);
      for (const name of Object.keys(r.schema.block.attributes)) expect(text).toContain(`\`${name}\``);
      for (const name of Object.keys(r.schema.block.blocks ?? {})) expect(text).toContain(`\`${name}\``);
      if (kind === 'resource') expect(text).toContain(`Import id: \`${r.importIdFormat}\``);
    },
  );
});
