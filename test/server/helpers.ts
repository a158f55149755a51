/** Small HTTP helpers for the API suites (plain fetch against the real server). */
import { reconstructPrivateKey, unwrapEnvironmentKey } from '../../core/crypto';
import { authorizationHeader, parsePssToken } from '../../core/token';
import type { TestServer } from '../support/server';

export interface Res<T = any> {
  status: number;
  body: T;
  text: string;
  headers: Headers;
}

export type Call = <T = any>(
  method: string,
  path: string,
  body?: unknown,
  headers?: Record<string, string>,
) => Promise<Res<T>>;

/** A caller bound to a token (pss string or null for no Authorization header). */
export function caller(srv: TestServer, token: string | null): Call {
  return async (method, path, body, headers = {}) => {
    const h: Record<string, string> = { ...headers };
    if (token) h.Authorization = authorizationHeader(token);
    let payload: string | undefined;
    if (body !== undefined) {
      payload = typeof body === 'string' ? body : JSON.stringify(body);
      h['Content-Type'] ??= 'application/json';
    }
    const res = await fetch(`${srv.url}${path}`, { method, headers: h, body: payload });
    const text = await res.text();
    let parsed: unknown = undefined;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    return { status: res.status, body: parsed as any, text, headers: res.headers };
  };
}

/** Creates an app with the default environments; returns the app and its environments by name. */
export async function createApp(call: Call, name = `app-${Math.random().toString(36).slice(2, 8)}`) {
  const r = await call('POST', '/v1/apps/', { name });
  if (r.status !== 201) throw new Error(`create app: ${r.status} ${r.text}`);
  const envs: Record<string, { id: string; name: string }> = {};
  for (const e of r.body.environments) envs[e.name] = e;
  return { app: r.body as { id: string; name: string }, envs };
}

/** Creates a service account with the Service role; returns its id and initial pss token. */
export async function createSa(call: Call, name = 'bot', roleName = 'Service') {
  const roles = await call('GET', '/v1/roles/');
  const role = roles.body.data.find((r: { name: string }) => r.name === roleName);
  const r = await call('POST', '/v1/service-accounts/', { name, role_id: role.id });
  if (r.status !== 201) throw new Error(`create SA: ${r.status} ${r.text}`);
  return { id: r.body.id as string, token: r.body.initialToken.token as string, body: r.body };
}

/** The environment key pair an account sees through /secrets/tokens/. */
export async function envKeysFor(call: Call, token: string, envId: string) {
  const t = await call('GET', '/service/secrets/tokens/');
  const pss = parsePssToken(token);
  const priv = reconstructPrivateKey(t.body.wrapped_key_share, pss.keyShare, pss.wrapKey);
  for (const app of t.body.apps) {
    for (const k of app.environment_keys) {
      if (k.environment.id === envId) {
        return {
          entry: k,
          ...unwrapEnvironmentKey(
            { wrappedSeed: k.wrapped_seed, wrappedSalt: k.wrapped_salt },
            { publicKey: pss.publicKey, privateKey: priv },
          ),
        };
      }
    }
  }
  throw new Error('no key for environment');
}
