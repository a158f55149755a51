/**
 * The real provider process, driven over gRPC with mutual TLS as Terraform drives it: handshake, AutoMTLS,
 * health, schema, validation diagnostics, unknown values, bad input from the client, shutdown.
 */
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildDescriptor } from '../../provider/proto/descriptor';
import { protoDir, serviceDefinition } from '../../provider/plugin/proto';
import * as grpc from '@grpc/grpc-js';
import { encode } from '@msgpack/msgpack';
import { generateCert } from '../../provider/plugin/cert';
import { decodeValue, encodeValue } from '../../provider/framework/msgpack';
import { blockType } from '../../provider/framework/schema';
import { UNKNOWN, Unknown, type TfObject } from '../../provider/framework/types';
import { providerDef } from '../../provider/provider';
import {
  MAGIC_COOKIE,
  PROVIDER_ENTRY,
  assertProviderBuilt,
  derToPem,
  mtlsCredentials,
  startPlugin,
  type Plugin,
} from './plugin-client';

const typeOf = (name: string) =>
  blockType(providerDef.resources.find((r) => r.typeName === name)!.schema.block);
const dv = (name: string, v: TfObject | null) => ({ msgpack: Buffer.from(encodeValue(typeOf(name), v)) });
type WireDiag = {
  severity: string;
  summary: string;
  detail: string;
  attribute?: { steps: Array<Record<string, unknown>> };
};
type WireSchema = {
  block: { attributes: Array<{ name: string; type: Uint8Array } & Record<string, unknown>> };
};
const bytesOf = (v: unknown): Uint8Array => (v as { msgpack: Uint8Array }).msgpack;
const replacePaths = (res: Record<string, unknown>): unknown[] =>
  (res.requires_replace as Array<{ steps: Array<{ attribute_name?: string }> }>).map(
    (p) => p.steps[0].attribute_name,
  );
const diagsOf = (res: Record<string, unknown>): WireDiag[] => (res.diagnostics as WireDiag[]) ?? [];
const stepNames = (d: WireDiag): unknown[] =>
  (d.attribute?.steps ?? []).map((s) => s.attribute_name ?? s.element_key_int ?? s.element_key_string);

describe('provider plugin over gRPC (spec §1–§7)', () => {
  let plugin: Plugin;

  beforeAll(async () => {
    assertProviderBuilt();
    plugin = await startPlugin({
      env: { PHASE_TOKEN: undefined, PHASE_SERVICE_TOKEN: undefined, PHASE_PAT_TOKEN: undefined },
    });
  });
  afterAll(() => plugin?.kill());

  it('prints a go-plugin handshake line with a raw-base64 DER certificate for localhost', () => {
    const h = plugin.handshake;
    expect(h.line.split('|')).toHaveLength(6);
    expect([h.core, h.app, h.network, h.protocol]).toEqual(['1', '6', 'unix', 'grpc']);
    expect(existsSync(h.address)).toBe(true);
    expect(h.cert).not.toMatch(/=/);
    expect(h.cert.length).toBeGreaterThan(50);
    const cert = new X509Certificate(Buffer.from(h.cert, 'base64'));
    expect(cert.subjectAltName).toBe('DNS:localhost');
    expect(cert.ca).toBe(true);
    expect(cert.verify(cert.publicKey)).toBe(true);
  });

  it('reports the plugin service as SERVING', async () => {
    expect(await plugin.health('plugin')).toBe('SERVING');
  });

  it('rejects a client whose certificate is not the one in PLUGIN_CLIENT_CERT', async () => {
    const stranger = generateCert(1);
    const client = plugin.rawClient(mtlsCredentials(derToPem(plugin.handshake.cert), stranger));
    const err = await new Promise<grpc.ServiceError | null>((resolve) =>
      (
        client as unknown as {
          GetMetadata: (r: object, o: object, cb: (e: grpc.ServiceError | null) => void) => void;
        }
      ).GetMetadata({}, { deadline: Date.now() + 5000 }, (e: grpc.ServiceError | null) => resolve(e)),
    );
    client.close();
    expect(err).not.toBeNull();
    expect(err!.code).toBe(grpc.status.UNAVAILABLE);
  });

  it('serves the full schema: resources, data sources, the ephemeral token, write-only and sensitive flags', async () => {
    const res = await plugin.call('GetProviderSchema');
    expect(diagsOf(res)).toEqual([]);
    const resources = res.resource_schemas as Record<string, WireSchema>;
    expect(Object.keys(resources).sort()).toEqual(
      [
        'phase_app',
        'phase_environment',
        'phase_external_identity',
        'phase_network_policy',
        'phase_network_policy_attachment',
        'phase_role',
        'phase_secret',
        'phase_service_account',
        'phase_service_account_access',
        'phase_service_account_identity',
        'phase_service_account_token',
      ].sort(),
    );
    expect(Object.keys(res.data_source_schemas as object).sort()).toEqual([
      'phase_app',
      'phase_role',
      'phase_secrets',
      'phase_service_account',
    ]);
    expect(Object.keys(res.ephemeral_resource_schemas as object)).toEqual(['phase_service_account_token']);
    const attr = (type: string, name: string) =>
      resources[type].block.attributes.find((a) => a.name === name);
    expect(attr('phase_secret', 'value_wo')).toMatchObject({
      write_only: true,
      sensitive: true,
      optional: true,
    });
    expect(attr('phase_service_account_token', 'token')).toMatchObject({ sensitive: true, computed: true });
    expect(Buffer.from(attr('phase_secret', 'tags')!.type).toString()).toBe('["list","string"]');
    const provider = (res.provider as WireSchema).block.attributes.map((a) => a.name).sort();
    expect(provider).toEqual(['host', 'phase_token', 'skip_tls_verification']);
  });

  it('answers GetMetadata and leaves unimplemented RPCs UNIMPLEMENTED', async () => {
    const md = await plugin.call('GetMetadata');
    expect((md.resources as unknown[]).length).toBe(11);
    await expect(plugin.call('CallFunction', { name: 'x' })).rejects.toMatchObject({
      code: grpc.status.UNIMPLEMENTED,
    });
  });

  it('points validation diagnostics at the attribute path', async () => {
    const res = await plugin.call('ValidateResourceConfig', {
      type_name: 'phase_service_account_token',
      config: dv('phase_service_account_token', {
        service_account_id: 'sa',
        name: 'ci',
        expires_at: 'next tuesday',
        rotate_after: 'often',
        expires_in: -5,
      }),
      client_capabilities: { write_only_attributes_allowed: true },
    });
    const d = diagsOf(res);
    expect(d.map((x) => stepNames(x)[0]).sort()).toEqual(
      ['expires_at', 'expires_in', 'expires_in', 'rotate_after'].sort(),
    );
    expect(d.find((x) => stepNames(x)[0] === 'rotate_after')!.detail).toMatch(/"720h"/);
  });

  it('refuses a write-only attribute when Terraform does not support write-only attributes', async () => {
    const cfg = { app_id: 'a', env: 'Development', key: 'K', value_wo: 'secret', value_wo_version: 1 };
    const refused = diagsOf(
      await plugin.call('ValidateResourceConfig', {
        type_name: 'phase_secret',
        config: dv('phase_secret', cfg),
        client_capabilities: {},
      }),
    );
    expect(refused).toHaveLength(1);
    expect(refused[0].summary).toBe('Write-only attribute not supported');
    expect(stepNames(refused[0])).toEqual(['value_wo']);
    const ok = await plugin.call('ValidateResourceConfig', {
      type_name: 'phase_secret',
      config: dv('phase_secret', { ...cfg, override: [] }),
      client_capabilities: { write_only_attributes_allowed: true },
    });
    expect(diagsOf(ok)).toEqual([]);
  });

  it('plans a create with unknown computed values and a null write-only value', async () => {
    const t = typeOf('phase_secret');
    const config = {
      app_id: UNKNOWN,
      env: 'Development',
      key: 'K',
      value_wo: 'v',
      value_wo_version: 1,
      override: [],
    };
    const res = await plugin.call('PlanResourceChange', {
      type_name: 'phase_secret',
      prior_state: dv('phase_secret', null),
      proposed_new_state: dv('phase_secret', config),
      config: dv('phase_secret', config),
    });
    expect(diagsOf(res)).toEqual([]);
    const planned = decodeValue(t, bytesOf(res.planned_state), []) as TfObject;
    expect(planned.app_id).toBeInstanceOf(Unknown);
    expect(planned.id).toBeInstanceOf(Unknown);
    expect(planned.version).toBeInstanceOf(Unknown);
    expect(planned.value_wo).toBeNull();
    expect(planned.path).toBe('/');
    expect(res.requires_replace).toEqual([]);
  });

  it('plans a replacement when a requires-replace attribute changes, and an in-place update otherwise', async () => {
    const t = typeOf('phase_secret');
    const prior = {
      id: 's1',
      app_id: 'a1',
      env: 'Development',
      key: 'K',
      value: 'v',
      path: '/',
      version: 1,
      created_at: '2026-01-01T00:00:00Z',
      updated_at: '2026-01-01T00:00:00Z',
      override: [],
    };
    const moved = {
      ...prior,
      env: 'Production',
      id: null,
      version: null,
      created_at: null,
      updated_at: null,
    };
    const res = await plugin.call('PlanResourceChange', {
      type_name: 'phase_secret',
      prior_state: dv('phase_secret', prior),
      proposed_new_state: dv('phase_secret', { ...prior, env: 'Production' }),
      config: dv('phase_secret', moved),
    });
    expect(replacePaths(res)).toEqual(['env']);
    const planned = decodeValue(t, bytesOf(res.planned_state), []) as TfObject;
    expect(planned.id).toBeInstanceOf(Unknown);

    const rename = await plugin.call('PlanResourceChange', {
      type_name: 'phase_secret',
      prior_state: dv('phase_secret', prior),
      proposed_new_state: dv('phase_secret', { ...prior, value: 'v2' }),
      config: dv('phase_secret', { ...moved, env: 'Development', value: 'v2' }),
    });
    expect(rename.requires_replace).toEqual([]);
    const p2 = decodeValue(t, bytesOf(rename.planned_state), []) as TfObject;
    expect(p2.id).toBe('s1');
    expect(p2.created_at).toBe('2026-01-01T00:00:00Z');
    expect(p2.version).toBeInstanceOf(Unknown);
  });

  it('plans a token replacement once it is older than rotate_after', async () => {
    const t = typeOf('phase_service_account_token');
    const prior = {
      id: 't1',
      service_account_id: 'sa',
      name: 'ci',
      rotate_after: '1h',
      token: 'pss_service:v2:x',
      bearer_token: 'ServiceAccount x',
      created_at: new Date(Date.now() - 2 * 3_600_000).toISOString(),
    };
    const config = { service_account_id: 'sa', name: 'ci', rotate_after: '1h' };
    const res = await plugin.call('PlanResourceChange', {
      type_name: 'phase_service_account_token',
      prior_state: dv('phase_service_account_token', prior),
      proposed_new_state: dv('phase_service_account_token', prior),
      config: dv('phase_service_account_token', config),
    });
    expect(diagsOf(res)).toEqual([]);
    expect(replacePaths(res)).toEqual(['created_at']);
    const planned = decodeValue(t, bytesOf(res.planned_state), []) as TfObject;
    expect(planned.token).toBeInstanceOf(Unknown);
    expect(planned.created_at).toBeInstanceOf(Unknown);

    const fresh = { ...prior, created_at: new Date().toISOString() };
    const noop = await plugin.call('PlanResourceChange', {
      type_name: 'phase_service_account_token',
      prior_state: dv('phase_service_account_token', fresh),
      proposed_new_state: dv('phase_service_account_token', fresh),
      config: dv('phase_service_account_token', config),
    });
    expect(noop.requires_replace).toEqual([]);
    expect(decodeValue(t, bytesOf(noop.planned_state), [])).toEqual({
      ...fresh,
      expires_at: null,
      expires_in: null,
      revoke_grace: null,
    });
  });

  it('answers bad input from the client with diagnostics, and keeps serving', async () => {
    const garbage = await plugin.call('PlanResourceChange', {
      type_name: 'phase_app',
      prior_state: { msgpack: Buffer.from([0xc1, 0xff, 0x00]) },
      proposed_new_state: { msgpack: Buffer.from([0x92]) },
      config: { msgpack: Buffer.from('not msgpack') },
    });
    expect(diagsOf(garbage)[0].summary).toMatch(/Invalid msgpack|Invalid value/);

    const wrongTypes = await plugin.call('ValidateResourceConfig', {
      type_name: 'phase_app',
      config: { msgpack: Buffer.from(encode({ name: 42, description: ['x'], bogus: true })) },
    });
    const d = diagsOf(wrongTypes);
    expect(d.map((x) => stepNames(x)[0]).sort()).toEqual(['bogus', 'description', 'name']);
    expect(d.every((x) => x.severity === 'ERROR')).toBe(true);

    const badJson = await plugin.call('UpgradeResourceState', {
      type_name: 'phase_app',
      version: 0,
      raw_state: { json: Buffer.from('{"id":') },
    });
    expect(diagsOf(badJson)[0].summary).toBe('Invalid stored state');

    const unknownType = await plugin.call('ReadResource', {
      type_name: 'phase_nope',
      current_state: { msgpack: Buffer.from([0xc0]) },
    });
    expect(diagsOf(unknownType)[0].summary).toBe('Unknown resource type');

    const badImport = await plugin.call('ImportResourceState', {
      type_name: 'phase_environment',
      id: 'no-colon',
    });
    expect(diagsOf(badImport)[0].detail).toMatch(/<app_id>:<environment_id>|app_id:environment_id/);

    const badHandle = await plugin.call('CloseEphemeralResource', {
      type_name: 'phase_service_account_token',
      private: Buffer.from('{'),
    });
    expect(diagsOf(badHandle).length).toBe(1);

    expect(await plugin.health('plugin')).toBe('SERVING');
  });

  it('upgrades stored JSON state, dropping attributes the schema no longer has', async () => {
    const res = await plugin.call('UpgradeResourceState', {
      type_name: 'phase_environment',
      version: 0,
      raw_state: {
        json: Buffer.from(JSON.stringify({ id: 'e1', app_id: 'a1', name: 'qa', removed_attr: 1 })),
      },
    });
    expect(diagsOf(res)).toEqual([]);
    const v = decodeValue(typeOf('phase_environment'), bytesOf(res.upgraded_state), []) as TfObject;
    expect(v).toMatchObject({ id: 'e1', app_id: 'a1', name: 'qa', env_type: null });
  });

  it('reports a missing token as a diagnostic on phase_token, and unknown provider config is accepted', async () => {
    const ptype = blockType(providerDef.schema.block);
    const missing = await plugin.call('ConfigureProvider', {
      terraform_version: '1.11.4',
      config: { msgpack: Buffer.from(encodeValue(ptype, { host: 'http://127.0.0.1:9' })) },
    });
    expect(diagsOf(missing)[0].summary).toBe('Missing Phase token');
    expect(stepNames(diagsOf(missing)[0])).toEqual(['phase_token']);
    const bad = await plugin.call('ConfigureProvider', {
      config: { msgpack: Buffer.from(encodeValue(ptype, { phase_token: 'pss_user:v1:nothex' })) },
    });
    expect(diagsOf(bad)[0].summary).toBe('Invalid phase_token');
    const later = await plugin.call('ConfigureProvider', {
      config: { msgpack: Buffer.from(encodeValue(ptype, { phase_token: UNKNOWN })) },
    });
    expect(diagsOf(later)).toEqual([]);
    const read = await plugin.call('ReadDataSource', {
      type_name: 'phase_app',
      config: {
        msgpack: Buffer.from(encodeValue(blockType(providerDef.dataSources[1].schema.block), { name: 'x' })),
      },
    });
    expect(diagsOf(read)[0].summary).toBe('Provider not configured');
  });

  it('opens the stdio stream and shuts down on GRPCController.Shutdown', async () => {
    const stdio = plugin.stdio();
    const received: unknown[] = [];
    const ended = new Promise<string>((resolve) => {
      stdio.on('data', (d) => received.push(d));
      stdio.on('status', (st: grpc.StatusObject) => resolve(grpc.status[st.code]));
      stdio.on('error', () => undefined);
    });
    await new Promise((r) => setTimeout(r, 100));
    await plugin.shutdown();
    // The stream was open (not UNIMPLEMENTED) until shutdown closed it cleanly.
    expect(await ended).toBe('OK');
    expect(received).toEqual([]);
    expect(await plugin.exited).toBe(0);
    expect(existsSync(plugin.handshake.address)).toBe(false);
  }, 15_000);
});

describe('provider process without Terraform', () => {
  it('exits on its own when Terraform dies without calling Shutdown', async () => {
    assertProviderBuilt();
    // A stand-in parent starts the provider, prints its pid after the handshake and exits at once.
    const script = `
      const { spawn } = require('child_process');
      const c = spawn(process.execPath, [${JSON.stringify(PROVIDER_ENTRY)}], {
        env: { ...process.env, TF_PLUGIN_MAGIC_COOKIE: ${JSON.stringify(MAGIC_COOKIE)} },
        stdio: ['ignore', 'pipe', 'ignore'],
        detached: true,
      });
      c.stdout.once('data', () => { process.stdout.write(String(c.pid)); process.exit(0); });`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 15_000 });
    const pid = Number(r.stdout);
    expect(pid).toBeGreaterThan(0);
    const alive = (): boolean => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    const deadline = Date.now() + 10_000;
    while (alive() && Date.now() < deadline) await new Promise((res) => setTimeout(res, 200));
    const stillAlive = alive();
    if (stillAlive) process.kill(pid, 'SIGKILL');
    expect(stillAlive).toBe(false);
  }, 20_000);

  it('ships a protobuf descriptor that matches the .proto files', () => {
    const dir = protoDir();
    expect(JSON.parse(readFileSync(join(dir, 'descriptor.json'), 'utf8'))).toEqual(
      JSON.parse(buildDescriptor(dir)),
    );
  });

  it('describes every tfplugin6.Provider RPC of protocol 6.8', () => {
    expect(Object.keys(serviceDefinition('tfplugin6.Provider')).sort()).toEqual(
      [
        'GetMetadata',
        'GetProviderSchema',
        'ValidateProviderConfig',
        'ValidateResourceConfig',
        'ValidateDataResourceConfig',
        'UpgradeResourceState',
        'ConfigureProvider',
        'ReadResource',
        'PlanResourceChange',
        'ApplyResourceChange',
        'ImportResourceState',
        'MoveResourceState',
        'ReadDataSource',
        'ValidateEphemeralResourceConfig',
        'OpenEphemeralResource',
        'RenewEphemeralResource',
        'CloseEphemeralResource',
        'GetFunctions',
        'CallFunction',
        'StopProvider',
      ].sort(),
    );
    expect(serviceDefinition('plugin.GRPCStdio').StreamStdio.responseStream).toBe(true);
  });

  it('refuses to start without the magic cookie and tells a person it is a plugin', () => {
    assertProviderBuilt();
    const env = { ...process.env };
    delete env.TF_PLUGIN_MAGIC_COOKIE;
    const r = spawnSync(process.execPath, [PROVIDER_ENTRY], { env, encoding: 'utf8', timeout: 10_000 });
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/This binary is a plugin/);
    expect(r.stderr).toMatch(/phase-bridge provider install/);
  });
});
