import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildConfig, envLayer, parseDuration, readConfigFile } from '../../agent/config';
import { configFromOptions } from '../../agent/cli';
import { AgentConfigError } from '../../agent/errors';
import { CallBudget } from '../../agent/budget';
import { hostAllowed } from '../../agent/security';

const TOKEN = `pss_service:v2:${'a'.repeat(64)}:${'b'.repeat(64)}:${'c'.repeat(64)}:${'d'.repeat(64)}`;

function issues(fn: () => unknown): Array<{ setting: string; source: string; message: string }> {
  try {
    fn();
  } catch (err) {
    if (err instanceof AgentConfigError) return err.issues;
    throw err;
  }
  throw new Error('expected an AgentConfigError');
}

describe('agent configuration', () => {
  test('durations', () => {
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('30s')).toBe(30_000);
    expect(parseDuration('5m')).toBe(300_000);
    expect(parseDuration('1.5h')).toBe(5_400_000);
    expect(parseDuration(2)).toBe(2000);
    expect(parseDuration('soon')).toBeUndefined();
    expect(parseDuration(-1)).toBeUndefined();
  });

  test('environment: PHASE_SERVICE_TOKEN wins over PHASE_TOKEN, scope from PHASE_APP/PHASE_ENV', () => {
    const other = TOKEN.replace('v2:aaaa', 'v2:eeee');
    const cfg = buildConfig([
      envLayer({
        PHASE_TOKEN: other,
        PHASE_SERVICE_TOKEN: TOKEN,
        PHASE_APP: 'shop',
        PHASE_ENV: 'Production',
        PHASE_HOST: 'http://127.0.0.1:9',
      }),
    ]);
    expect(cfg.token).toBe(TOKEN);
    expect(cfg.host).toBe('http://127.0.0.1:9');
    expect(cfg.scopes).toEqual([{ app: 'shop', env: 'Production', name: 'shop/Production' }]);
    expect(cfg.listenHost).toBe('127.0.0.1');
    expect(cfg.refreshInterval).toBe(60_000);
    expect(cfg.budgetPerMinute).toBe(1);
  });

  test('flags override environment field by field; --scope gives several scopes', () => {
    const cfg = configFromOptions(
      { env: 'Staging', refresh: '5s' },
      { PHASE_SERVICE_TOKEN: TOKEN, PHASE_APP: 'shop', PHASE_ENV: 'Production' },
    );
    expect(cfg.scopes[0]).toMatchObject({ app: 'shop', env: 'Staging' });
    expect(cfg.refreshInterval).toBe(5000);
    const multi = configFromOptions(
      { scope: ['app=shop,env=Production,path=/api,tags=a;b', 'app-id=123,env=dev,name=legacy'] },
      { PHASE_SERVICE_TOKEN: TOKEN },
    );
    expect(multi.scopes).toEqual([
      { app: 'shop', env: 'Production', path: '/api', tags: ['a', 'b'], name: 'shop/Production/api' },
      { appId: '123', env: 'dev', name: 'legacy' },
    ]);
  });

  test('config file, overridden by flags; token file beats a file token', () => {
    const dir = mkdtempSync(join(tmpdir(), 'agent-cfg-'));
    const file = join(dir, 'agent.json');
    writeFileSync(
      file,
      JSON.stringify({ token: TOKEN, scopes: [{ app: 'a', env: 'dev' }], port: 9999, maxStale: '2h' }),
    );
    const cfg = configFromOptions({ config: file, port: '1234', tokenFile: join(dir, 'tok') }, {});
    expect(cfg.port).toBe(1234);
    expect(cfg.maxStale).toBe(7_200_000);
    expect(cfg.token).toBeUndefined();
    expect(cfg.tokenFile).toBe(join(dir, 'tok'));
    expect(readConfigFile(file).source.port).toContain(file);
  });

  test('one clear error per bad setting, naming where it came from', () => {
    const dir = mkdtempSync(join(tmpdir(), 'agent-cfg-'));
    const file = join(dir, 'agent.json');
    writeFileSync(
      file,
      JSON.stringify({ scopes: [{ env: 'dev' }], refreshInterval: 'often', colour: 'blue' }),
    );
    const got = issues(() =>
      configFromOptions(
        { config: file, port: '99999', jitter: '2' },
        { PHASE_SERVICE_TOKEN: 'pss_service:v2:nope' },
      ),
    );
    const by = Object.fromEntries(got.map((i) => [i.setting, i]));
    expect(by.port.source).toBe('--port');
    expect(by.port.message).toMatch(/0-65535/);
    expect(by.jitter.source).toBe('--jitter');
    expect(by.refreshInterval.message).toMatch(/duration/);
    expect(by.refreshInterval.source).toContain('config file');
    expect(by['scopes.0.app'].message).toMatch(/app \(name\) or appId/);
    expect(by.token.source).toBe('PHASE_SERVICE_TOKEN');
    expect(by.token.message).toMatch(/6 colon-separated segments/);
    expect(by.token.message).not.toContain('nope');
    expect(by.config.message).toMatch(/unknown setting\(s\): colour/);
    // one entry per setting
    expect(new Set(got.map((i) => i.setting)).size).toBe(got.length);
  });

  test('missing token and missing scope are reported together', () => {
    const got = issues(() => buildConfig([{ values: { scopes: [] }, source: {} }]));
    expect(got.map((i) => i.setting).sort()).toEqual(['scopes', 'token']);
  });

  test('non-loopback listening needs the explicit flag and TLS', () => {
    const got = issues(() =>
      configFromOptions({ listen: '0.0.0.0', app: 'a', env: 'b' }, { PHASE_SERVICE_TOKEN: TOKEN }),
    );
    expect(got.find((i) => i.setting === 'listenHost')?.message).toMatch(/--allow-non-loopback/);
    expect(got.find((i) => i.setting === 'tlsCert')?.message).toMatch(/TLS/);
    const ok = configFromOptions(
      { listen: '0.0.0.0', allowNonLoopback: true, tlsCert: '/c.pem', tlsKey: '/k.pem', app: 'a', env: 'b' },
      { PHASE_SERVICE_TOKEN: TOKEN },
    );
    expect(ok.allowNonLoopback).toBe(true);
  });

  test('malformed config file JSON is one clear error', () => {
    const dir = mkdtempSync(join(tmpdir(), 'agent-cfg-'));
    const file = join(dir, 'bad.json');
    writeFileSync(file, '{"scopes": [');
    const got = issues(() => readConfigFile(file));
    expect(got).toHaveLength(1);
    expect(got[0].message).toMatch(/not valid JSON/);
  });
});

describe('call budget', () => {
  test('burst, then one call per refill period; 429 blocks until Retry-After', () => {
    let now = 0;
    const b = new CallBudget(1, 2, () => now);
    expect(b.tryTake()).toBe(true);
    expect(b.tryTake()).toBe(true);
    expect(b.tryTake()).toBe(false);
    expect(b.waitMs()).toBe(60_000);
    now += 60_000;
    expect(b.tryTake()).toBe(true);
    expect(b.tryTake()).toBe(false);
    now += 600_000; // refill caps at the burst
    b.rateLimited(30_000);
    expect(b.tryTake()).toBe(false);
    expect(b.waitMs()).toBe(30_000);
    now += 30_000;
    expect(b.tryTake()).toBe(true);
    expect(b.tryTake()).toBe(true);
    expect(b.tryTake()).toBe(false);
    expect(b.used).toBe(5);
  });
});

describe('Host check', () => {
  const none = new Set<string>();
  test.each([
    ['localhost', true],
    ['localhost:8787', true],
    ['127.0.0.1:1', true],
    ['127.1.2.3', true],
    ['[::1]:8787', true],
    ['[::1]', true],
    ['evil.example', false],
    ['evil.example:8787', false],
    ['127.0.0.1.evil.example', false],
    ['localhost.evil', false],
    ['[::2]:80', false],
    ['[::1]x', false],
    ['localhost:abc', false],
    ['', false],
  ])('%s → %s', (host, ok) => {
    expect(hostAllowed(host, none)).toBe(ok);
  });
  test('extra names when configured', () => {
    expect(hostAllowed('agent.internal:8443', new Set(['agent.internal']))).toBe(true);
  });
});
