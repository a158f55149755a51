/**
 * `phase-bridge provider install`: writes an executable launcher into Terraform's implied local mirror
 * (`~/.terraform.d/plugins/registry.terraform.io/phase-bridge/phase/VERSION/OS_ARCH/`, spec §8.3), so that
 * `terraform init` with `source = "phase-bridge/phase"` works offline.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { PhaseBridgeError } from '../core/errors';

export const PROVIDER_HOST = 'registry.terraform.io';
export const PROVIDER_NAMESPACE = 'phase-bridge';
export const PROVIDER_TYPE = 'phase';

/** Terraform's OS_ARCH for this machine (Go's GOOS_GOARCH spelling). */
export function terraformPlatform(platform: string = process.platform, arch: string = process.arch): string {
  const os = platform === 'win32' ? 'windows' : platform;
  const a = arch === 'x64' ? 'amd64' : arch === 'ia32' ? '386' : arch;
  return `${os}_${a}`;
}

/** The repository root (holds package.json named phase-bridge), from sources or from dist/. */
export function repoRoot(start: string = __dirname): string {
  let dir = start;
  for (let i = 0; i < 6; i++) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'phase-bridge') return dir;
      } catch {
        // not ours; keep walking up
      }
    }
    dir = dirname(dir);
  }
  throw new PhaseBridgeError('provider_install', `cannot find the phase-bridge repository above ${start}`);
}

export interface InstallOptions {
  /** Home directory whose `.terraform.d/plugins` receives the provider (default: the user's home). */
  home?: string;
  /** Provider version (default: the phase-bridge version). */
  version?: string;
  /** Node.js executable the launcher runs (default: the one running this command). */
  node?: string;
  /** The provider entry point (default: `<repo>/dist/provider/main.js`). */
  entry?: string;
}

export interface InstallResult {
  /** The launcher file Terraform executes. */
  path: string;
  version: string;
  source: string;
  entryExists: boolean;
}

/** Writes the launcher; safe to run again (same content, same lock-file hash). */
export function installProvider(opts: InstallOptions = {}): InstallResult {
  const { VERSION } = require('../core/version') as typeof import('../core/version');
  const version = opts.version ?? VERSION;
  if (!/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/.test(version)) {
    throw new PhaseBridgeError(
      'provider_install',
      `version "${version}" is not a semantic version like 0.1.0`,
    );
  }
  const home = resolve(opts.home ?? homedir());
  const entry = resolve(opts.entry ?? join(repoRoot(), 'dist', 'provider', 'main.js'));
  const node = opts.node ?? process.execPath;
  const dir = join(
    home,
    '.terraform.d',
    'plugins',
    PROVIDER_HOST,
    PROVIDER_NAMESPACE,
    PROVIDER_TYPE,
    version,
    terraformPlatform(),
  );
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `terraform-provider-${PROVIDER_TYPE}_v${version}`);
  const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
  writeFileSync(
    path,
    `#!/bin/sh\n# phase-bridge Terraform provider launcher (written by \`phase-bridge provider install\`)\nexec ${q(node)} ${q(entry)} "$@"\n`,
  );
  chmodSync(path, 0o755);
  return { path, version, source: `${PROVIDER_NAMESPACE}/${PROVIDER_TYPE}`, entryExists: existsSync(entry) };
}
