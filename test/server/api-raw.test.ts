/** Extension `GET /v1/secrets/?raw=true`: values with references as written (what the Terraform provider reads). */
import { PhaseClient } from '../../core/client';
import { initCrypto } from '../../core/crypto';
import { startTestServer, type TestServer } from '../support/server';
import { STORES } from '../support/stores';

describe.each(STORES)('raw secret reads (%s)', (store) => {
  let srv: TestServer;
  let client: PhaseClient;
  let appId: string;

  beforeAll(async () => {
    await initCrypto();
    srv = await startTestServer({ store });
    client = new PhaseClient({ host: srv.url, token: srv.ownerToken });
    appId = (await client.createApp({ name: 'raw-reads' })).id;
    await client.createSecrets({ appId, env: 'Development' }, [
      { key: 'HOST', value: 'db.internal' },
      { key: 'URL', value: 'postgres://${HOST}/app' },
    ]);
  });
  afterAll(() => srv?.close());

  test('default reads resolve references, raw reads return them as written', async () => {
    const resolved = await client.listSecrets({ appId, env: 'Development', key: 'URL' });
    const raw = await client.listSecrets({ appId, env: 'Development', key: 'URL', raw: true });
    expect(resolved.map((s) => s.value)).toEqual(['postgres://db.internal/app']);
    expect(raw.map((s) => s.value)).toEqual(['postgres://${HOST}/app']);
    expect(raw[0].id).toBe(resolved[0].id);
  });
});
