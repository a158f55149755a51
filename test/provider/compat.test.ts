/**
 * A configuration written for the official Phase provider (phasehq/phase 0.2.0: `phase_secret` with override,
 * `phase_secrets` with path/key/tags filters, provider block with host/phase_token/skip_tls_verification) runs
 * unchanged against phase-bridge; only `required_providers.source` names this provider.
 */
import { PhaseClient } from '../../core/client';
import { startTestServer, type TestServer } from '../support/server';
import { createWorkspace, requireTerraform, type Workspace } from './terraform-harness';

jest.setTimeout(240_000);

const OFFICIAL_CONFIG = `
terraform {
  required_providers {
    phase = {
      source = "phase-bridge/phase"
    }
  }
}

variable "host" {}
variable "token" {
  sensitive = true
}
variable "app_id" {}

provider "phase" {
  host                  = var.host
  phase_token           = var.token
  skip_tls_verification = false
}

resource "phase_secret" "database_password" {
  app_id  = var.app_id
  env     = "development"
  key     = "DATABASE_PASSWORD"
  value   = "super-secret-password"
  comment = "Database password"
  path    = "/database"
  tags    = ["database"]
}

resource "phase_secret" "debug" {
  app_id = var.app_id
  env    = "development"
  key    = "DEBUG"
  value  = "false"

  override {
    value     = "true"
    is_active = true
  }
}

# Created outside Terraform first: the official provider takes an existing key over and updates it.
resource "phase_secret" "existing" {
  app_id = var.app_id
  env    = "development"
  key    = "EXISTING"
  value  = "managed-now"
}

data "phase_secrets" "database_secrets" {
  app_id = var.app_id
  env    = phase_secret.database_password.env
  path   = phase_secret.database_password.path
  tags   = ["database"]
}

data "phase_secrets" "all" {
  env    = "development"
  app_id = var.app_id
  path   = ""
  depends_on = [phase_secret.database_password, phase_secret.debug, phase_secret.existing]
}

data "phase_secrets" "single" {
  env    = "development"
  app_id = var.app_id
  key    = "DEBUG"
  depends_on = [phase_secret.debug]
}

output "db_password_read" {
  value     = data.phase_secrets.database_secrets.secrets["DATABASE_PASSWORD"]
  sensitive = true
}

output "all_secret_keys" {
  value = sort(nonsensitive(keys(data.phase_secrets.all.secrets)))
}

output "debug_value" {
  value     = data.phase_secrets.single.secrets["DEBUG"]
  sensitive = true
}

output "managed_secret_version" {
  value = phase_secret.database_password.version
}

output "managed_secret_updated_at" {
  value = phase_secret.database_password.updated_at
}
`;

describe.each(['sqlite', 'postgres'] as const)(
  'configurations written for the official Phase provider (%s store)',
  (store) => {
    let srv: TestServer;
    let ws: Workspace;
    let owner: PhaseClient;
    let dir: string;
    let appId: string;

    beforeAll(async () => {
      requireTerraform();
      srv = await startTestServer({ store });
      owner = new PhaseClient({ host: srv.url, token: srv.ownerToken, retries: 0 });
      appId = (await owner.createApp({ name: 'official' })).id;
      await owner.createSecrets({ appId, env: 'Development' }, [{ key: 'EXISTING', value: 'from-before' }]);
      ws = createWorkspace({ TF_VAR_host: srv.url, TF_VAR_token: srv.ownerToken, TF_VAR_app_id: appId });
      dir = ws.write('official', { 'main.tf': OFFICIAL_CONFIG });
    });

    afterAll(async () => {
      ws?.cleanup();
      await srv?.close();
    });

    it('inits, applies and reads back through phase_secrets', async () => {
      await ws.tf(dir, ['init', '-input=false', '-no-color']);
      await ws.tf(dir, ['apply', '-input=false', '-auto-approve', '-no-color']);
      const out = async (name: string): Promise<string> =>
        (await ws.tf(dir, ['output', '-raw', name])).stdout;
      expect((await out('db_password_read')) === 'super-secret-password').toBe(true);
      // An active personal override wins in phase_secrets, as in the official provider.
      expect((await out('debug_value')) === 'true').toBe(true);
      expect(JSON.parse((await ws.tf(dir, ['output', '-json', 'all_secret_keys'])).stdout)).toEqual([
        'DATABASE_PASSWORD',
        'DEBUG',
        'EXISTING',
      ]);
      expect(await out('managed_secret_version')).toBe('1');
      expect(await out('managed_secret_updated_at')).toMatch(/^\d{4}-\d{2}-\d{2}T/);
    });

    it('took over the existing key instead of failing on the duplicate', async () => {
      const list = await owner.listSecrets({ appId, env: 'Development', key: 'EXISTING' });
      expect(list).toHaveLength(1);
      expect(list[0].value === 'managed-now').toBe(true);
    });

    it('plans nothing afterwards, and destroys cleanly', async () => {
      const r = await ws.tf(dir, ['plan', '-input=false', '-no-color', '-detailed-exitcode']);
      expect(r.stdout).toMatch(/No changes/);
      await ws.tf(dir, ['destroy', '-input=false', '-auto-approve', '-no-color']);
      expect(await owner.listSecrets({ appId, env: 'Development' })).toEqual([]);
    });

    it('shows diagnostics at the attribute in the configuration', async () => {
      const bad = ws.write('invalid', {
        'main.tf': `
terraform {
  required_providers {
    phase = { source = "phase-bridge/phase" }
  }
}
variable "host" {}
variable "token" {
  sensitive = true
}
variable "app_id" {}
provider "phase" {
  host        = var.host
  phase_token = var.token
}
resource "phase_service_account_token" "t" {
  service_account_id = "sa"
  name               = "t"
  rotate_after       = "every month"
}
resource "phase_secret" "s" {
  app_id = var.app_id
  env    = "development"
  key    = "K"
}
`,
      });
      await ws.tf(bad, ['init', '-input=false', '-no-color']);
      const r = await ws.tf(bad, ['validate', '-no-color'], [1]);
      expect(r.stderr).toMatch(/Invalid duration/);
      expect(r.stderr).toMatch(/on main.tf line 19, in resource "phase_service_account_token" "t":/);
      expect(r.stderr).toMatch(/Missing value/);

      const wrongToken = ws.write('wrong-token', {
        'main.tf': `
terraform {
  required_providers {
    phase = { source = "phase-bridge/phase" }
  }
}
variable "host" {}
variable "token" {
  sensitive = true
}
variable "app_id" {}
provider "phase" {
  host        = var.host
  phase_token = "pss_user:v1:${'ab'.repeat(32)}:${'cd'.repeat(32)}:${'ef'.repeat(32)}:${'01'.repeat(32)}"
}
data "phase_secrets" "all" {
  app_id = var.app_id
  env    = "development"
}
`,
      });
      await ws.tf(wrongToken, ['init', '-input=false', '-no-color']);
      const denied = await ws.tf(wrongToken, ['plan', '-input=false', '-no-color'], [1]);
      expect(denied.stderr).toMatch(/Error: Authentication failed/);
      expect(denied.stderr).toMatch(/PHASE_TOKEN/);
    });
  },
);
