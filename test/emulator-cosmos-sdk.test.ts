import { execFile } from 'node:child_process';
import { Agent } from 'node:https';
import { promisify } from 'node:util';
import { readFile } from 'node:fs/promises';
import { CosmosClient, PartitionKeyKind, type Container } from '@azure/cosmos';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type Emulator } from '../src/emulator/server.js';

// The official SDK with its default settings (endpoint discovery, query plans, retries), against the
// emulator over HTTP and over HTTPS. For HTTPS the only addition is the emulator's certificate,
// passed to the SDK's own `agent` option instead of being trusted machine-wide.

let emulator: Emulator;
let ca: string;

beforeAll(async () => {
  emulator = await startEmulator({ port: 0 });
  ca = await readFile(emulator.certPath!, 'utf8');
});
afterAll(() => emulator.close());

describe.each(['http', 'https'] as const)('@azure/cosmos over %s, default settings', (scheme) => {
  let client: CosmosClient;
  let items: Container;

  beforeAll(async () => {
    client =
      scheme === 'http'
        ? new CosmosClient({ endpoint: emulator.url, key: emulator.key })
        : new CosmosClient({ endpoint: emulator.httpsUrl!, key: emulator.key, agent: new Agent({ ca }) });
    const { database } = await client.databases.createIfNotExists({ id: `sdk-${scheme}` });
    ({ container: items } = await database.containers.createIfNotExists({
      id: 'items',
      partitionKey: { paths: ['/tenant'] },
    }));
  });
  afterAll(() => client.dispose());

  it('reads the account, and creates, reads and lists databases and containers', async () => {
    const { resource: account } = await client.getDatabaseAccount();
    expect(account?.consistencyPolicy).toBe('Session');
    const { database, statusCode } = await client.databases.create({ id: `made-${scheme}` });
    expect(statusCode).toBe(201);
    const { resources: databases } = await client.databases.readAll().fetchAll();
    expect(databases.map((db) => db.id)).toEqual(expect.arrayContaining([`sdk-${scheme}`, `made-${scheme}`]));
    const again = await client.databases.createIfNotExists({ id: `made-${scheme}` });
    expect(again.statusCode).toBe(200);
    const { container } = await database.containers.create({ id: 'c', partitionKey: '/pk' });
    const { resource: definition } = await container.read();
    expect(definition?.partitionKey?.paths).toEqual(['/pk']);
    const { resources: containers } = await database.containers.readAll().fetchAll();
    expect(containers.map((c) => c.id)).toEqual(['c']);
    await container.delete();
    expect((await database.delete()).statusCode).toBe(204);
    await expect(database.read()).rejects.toMatchObject({ code: 404 });
  });

  it('creates, reads, upserts, replaces, patches and deletes items', async () => {
    const created = await items.items.create({ id: 'i1', tenant: 'a', n: 1 });
    expect(created.statusCode).toBe(201);
    await expect(items.items.create({ id: 'i1', tenant: 'a' })).rejects.toMatchObject({ code: 409 });
    // The same id in another partition is another item.
    expect((await items.items.create({ id: 'i1', tenant: 'b', n: 10 })).statusCode).toBe(201);

    const { resource: read } = await items.item('i1', 'a').read<{ n: number }>();
    expect(read?.n).toBe(1);
    expect((await items.item('i1', 'zzz').read()).statusCode).toBe(404);

    const upserted = await items.items.upsert({ id: 'i1', tenant: 'a', n: 2 });
    expect(upserted.statusCode).toBe(200);
    expect(upserted.resource?._etag).not.toBe(created.resource?._etag);
    expect((await items.items.upsert({ id: 'i2', tenant: 'a', n: 3 })).statusCode).toBe(201);

    const replaced = await items.item('i1', 'a').replace({ id: 'i1', tenant: 'a', n: 5, tags: ['x'] });
    expect(replaced.resource).toMatchObject({ n: 5 });
    await expect(
      items
        .item('i1', 'a')
        .replace(
          { id: 'i1', tenant: 'a', n: 6 },
          { accessCondition: { type: 'IfMatch', condition: created.resource!._etag } },
        ),
    ).rejects.toMatchObject({ code: 412 });

    const patched = await items.item('i1', 'a').patch([
      { op: 'incr', path: '/n', value: 2 },
      { op: 'add', path: '/tags/-', value: 'y' },
      { op: 'set', path: '/status', value: 'open' },
    ]);
    expect(patched.resource).toMatchObject({ n: 7, tags: ['x', 'y'], status: 'open' });

    expect((await items.item('i2', 'a').delete()).statusCode).toBe(204);
    expect((await items.item('i2', 'a').read()).statusCode).toBe(404);
  });

  it('answers a parameterised query within a partition and across partitions, and readAll', async () => {
    for (const [id, tenant, n] of [
      ['q1', 'p', 1],
      ['q2', 'p', 2],
      ['q3', 'r', 3],
    ] as const) {
      await items.items.create({ id, tenant, n, kind: 'q' });
    }
    const query = {
      query: 'SELECT c.id FROM c WHERE c.kind = @kind ORDER BY c.n DESC',
      parameters: [{ name: '@kind', value: 'q' }],
    };
    const within = await items.items.query<{ id: string }>(query, { partitionKey: 'p' }).fetchAll();
    expect(within.resources.map((r) => r.id)).toEqual(['q2', 'q1']);
    const across = await items.items.query<{ id: string }>(query).fetchAll();
    expect(across.resources.map((r) => r.id)).toEqual(['q3', 'q2', 'q1']);
    const count = await items.items.query('SELECT VALUE COUNT(1) FROM c WHERE c.kind = "q"').fetchAll();
    expect(count.resources).toEqual([3]);
    const paged = items.items.query<{ id: string }>(query, { maxItemCount: 2 });
    const first = await paged.fetchNext();
    expect(first.resources).toHaveLength(2);
    expect(first.hasMoreResults).toBe(true);
    expect((await paged.fetchNext()).resources.map((r) => r.id)).toEqual(['q1']);

    const all = await items.items.readAll<{ id: string }>().fetchAll();
    expect(all.resources.map((r) => r.id)).toEqual(expect.arrayContaining(['q1', 'q2', 'q3']));
  });

  it('keeps items apart by hierarchical partition keys', async () => {
    const { container } = await client.database(`sdk-${scheme}`).containers.createIfNotExists({
      id: 'tenants',
      partitionKey: { paths: ['/tenant', '/user'], kind: PartitionKeyKind.MultiHash, version: 2 },
    });
    expect((await container.items.create({ id: 'x', tenant: 't', user: 'u1', n: 1 })).statusCode).toBe(201);
    expect((await container.items.create({ id: 'x', tenant: 't', user: 'u2', n: 2 })).statusCode).toBe(201);
    expect((await container.items.create({ id: 'x', tenant: 'o', user: 'u1', n: 3 })).statusCode).toBe(201);
    const { resource } = await container.item('x', ['t', 'u2']).read<{ n: number }>();
    expect(resource?.n).toBe(2);
    expect((await container.item('x', ['t', 'u3']).read()).statusCode).toBe(404);
    const upserted = await container.items.upsert({ id: 'x', tenant: 't', user: 'u1', n: 4 });
    expect(upserted.statusCode).toBe(200);
    const full = await container.items
      .query('SELECT VALUE c.n FROM c', { partitionKey: ['t', 'u1'] })
      .fetchAll();
    expect(full.resources).toEqual([4]);
    const all = await container.items.query('SELECT VALUE c.n FROM c ORDER BY c.n').fetchAll();
    expect(all.resources).toEqual([2, 3, 4]);
  });
});

describe('@azure/cosmos in a process started with NODE_EXTRA_CA_CERTS, as the emulator prints it', () => {
  it('creates and reads an item over https://localhost with no client options at all', async () => {
    const script = `
      import { CosmosClient } from '@azure/cosmos';
      const client = new CosmosClient({ endpoint: process.env.ENDPOINT, key: process.env.KEY });
      const { database } = await client.databases.createIfNotExists({ id: 'child' });
      const { container } = await database.containers.createIfNotExists({ id: 'c', partitionKey: '/id' });
      await container.items.create({ id: 'from-child' });
      const { resource } = await container.item('from-child', 'from-child').read();
      console.log(JSON.stringify({ id: resource.id }));`;
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], {
      cwd: process.cwd(),
      env: {
        ...process.env,
        NODE_EXTRA_CA_CERTS: emulator.certPath,
        ENDPOINT: emulator.httpsUrl,
        KEY: emulator.key,
      },
      timeout: 60_000,
    });
    expect(JSON.parse(stdout.trim())).toEqual({ id: 'from-child' });
  });
});
