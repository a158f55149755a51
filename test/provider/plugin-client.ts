/**
 * A small go-plugin client for tests: launches the built provider as Terraform does (magic cookie, client
 * certificate in PLUGIN_CLIENT_CERT), parses the handshake line and talks gRPC over mutual TLS.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { generateCert, type GeneratedCert } from '../../provider/plugin/cert';
import { serviceDefinition } from '../../provider/plugin/proto';

export const ROOT = join(__dirname, '..', '..');
export const PROVIDER_ENTRY = join(ROOT, 'dist', 'provider', 'main.js');
export const MAGIC_COOKIE = 'd602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2';

function newestMtime(dir: string, ext: string): { file: string; mtime: number } {
  let best = { file: '', mtime: 0 };
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      const sub = newestMtime(p, ext);
      if (sub.mtime > best.mtime) best = sub;
    } else if (e.name.endsWith(ext)) {
      const m = statSync(p).mtimeMs;
      if (m > best.mtime) best = { file: p, mtime: m };
    }
  }
  return best;
}

/** Fails clearly when the provider was not built, or was built before its sources last changed. */
export function assertProviderBuilt(): void {
  if (!existsSync(PROVIDER_ENTRY)) {
    throw new Error(
      `${relative(ROOT, PROVIDER_ENTRY)} is missing: run \`npm run build\` before the provider tests.`,
    );
  }
  const src = newestMtime(join(ROOT, 'provider'), '.ts');
  const built = newestMtime(join(ROOT, 'dist', 'provider'), '.js');
  if (src.mtime > built.mtime + 1000) {
    throw new Error(
      `dist/provider is older than ${relative(ROOT, src.file)}: run \`npm run build\` before the provider tests.`,
    );
  }
}

export interface Handshake {
  core: string;
  app: string;
  network: string;
  address: string;
  protocol: string;
  cert: string;
  line: string;
}

export function parseHandshake(line: string): Handshake {
  const parts = line.trim().split('|');
  if (parts.length < 6) throw new Error(`unrecognised handshake line: ${line}`);
  const [core, app, network, address, protocol, cert] = parts;
  return { core, app, network, address, protocol, cert, line: line.trim() };
}

export function derToPem(b64Raw: string): string {
  const b64 = Buffer.from(b64Raw, 'base64').toString('base64');
  return `-----BEGIN CERTIFICATE-----\n${b64.replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END CERTIFICATE-----\n`;
}

type Unary = (
  req: unknown,
  cb: (err: grpc.ServiceError | null, res: Record<string, unknown>) => void,
) => void;

export interface Plugin {
  proc: ChildProcessWithoutNullStreams;
  handshake: Handshake;
  clientCert: GeneratedCert;
  stderr: () => string;
  /** Calls a tfplugin6.Provider RPC. */
  call(method: string, req?: Record<string, unknown>): Promise<Record<string, unknown>>;
  health(service: string): Promise<string>;
  shutdown(): Promise<void>;
  /** Opens plugin.GRPCStdio/StreamStdio. */
  stdio(): grpc.ClientReadableStream<unknown>;
  /** Opens a gRPC client with other credentials (to test the TLS checks). */
  rawClient(creds: grpc.ChannelCredentials): grpc.Client;
  exited: Promise<number | null>;
  kill(): void;
}

const ctor = (service: string): grpc.ServiceClientConstructor =>
  grpc.makeGenericClientConstructor(serviceDefinition(service), service);

export function mtlsCredentials(serverCertPem: string, client: GeneratedCert): grpc.ChannelCredentials {
  return grpc.credentials.createSsl(
    Buffer.from(serverCertPem),
    Buffer.from(client.keyPem),
    Buffer.from(client.certPem),
  );
}

const CHANNEL_OPTS = { 'grpc.ssl_target_name_override': 'localhost', 'grpc.default_authority': 'localhost' };

/** Starts the provider process and connects to it. */
export async function startPlugin(opts: { env?: Record<string, string | undefined> } = {}): Promise<Plugin> {
  assertProviderBuilt();
  const clientCert = generateCert(1);
  const proc = spawn(process.execPath, [PROVIDER_ENTRY], {
    env: {
      ...process.env,
      TF_PLUGIN_MAGIC_COOKIE: MAGIC_COOKIE,
      PLUGIN_PROTOCOL_VERSIONS: '5,6',
      PLUGIN_CLIENT_CERT: clientCert.certPem,
      ...opts.env,
    },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let err = '';
  proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`no handshake within 10 s; stderr: ${err}`)), 10_000);
    proc.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        resolve(out.slice(0, nl));
      }
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`provider exited with ${code} before the handshake; stderr: ${err}`));
    });
  });
  const handshake = parseHandshake(line);
  const creds = mtlsCredentials(derToPem(handshake.cert), clientCert);
  const target = `unix:${handshake.address}`;
  const provider = new (ctor('tfplugin6.Provider'))(target, creds, CHANNEL_OPTS) as Record<string, Unary> &
    grpc.Client;
  const health = new (ctor('grpc.health.v1.Health'))(target, creds, CHANNEL_OPTS) as Record<string, Unary> &
    grpc.Client;
  const controller = new (ctor('plugin.GRPCController'))(target, creds, CHANNEL_OPTS) as Record<
    string,
    Unary
  > &
    grpc.Client;
  const stdio = new (ctor('plugin.GRPCStdio'))(target, creds, CHANNEL_OPTS) as unknown as grpc.Client & {
    StreamStdio(req: unknown): grpc.ClientReadableStream<unknown>;
  };

  const invoke = (c: Record<string, Unary>, method: string, req: unknown): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => {
      const fn = c[method];
      if (typeof fn !== 'function') return reject(new Error(`no method ${method}`));
      fn.call(c, req, (e, res) => (e ? reject(e) : resolve(res)));
    });

  return {
    proc,
    handshake,
    clientCert,
    stderr: () => err,
    exited,
    call: (method, req = {}) => invoke(provider, method, req),
    health: async (service) => String((await invoke(health, 'Check', { service })).status),
    shutdown: async () => {
      await invoke(controller, 'Shutdown', {});
      provider.close();
      health.close();
      controller.close();
    },
    stdio: () => stdio.StreamStdio({}),
    rawClient: (c) => new (ctor('tfplugin6.Provider'))(target, c, CHANNEL_OPTS),
    kill: () => {
      provider.close();
      health.close();
      controller.close();
      stdio.close();
      // SIGTERM lets the provider remove its socket; SIGKILL only if it does not go.
      if (proc.exitCode === null) {
        proc.kill('SIGTERM');
        setTimeout(() => proc.exitCode === null && proc.kill('SIGKILL'), 2000).unref();
      }
    },
  };
}
