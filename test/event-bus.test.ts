// The PostgreSQL event bus between hub processes, bus to bus on a real database: what one
// process publishes in one turn reaches the others whole, and a process whose LISTEN connection
// was cut hears, once back, what it missed and what came after in the order it was published.
import { expect } from 'chai';
import pg from 'pg';
import { PgEventBus } from '../lib/event-bus.js';
import { silentLogger } from '../lib/log.js';
import { PgStore } from '../lib/store/pg-store.js';
import { adminQuery, dropDatabaseSchema, freshDatabaseUrl } from './helpers/postgres.js';

describe('PostgreSQL event bus between processes', function () {
  this.timeout(20_000);
  let url: string;
  const buses: PgEventBus[] = [];
  const busOn = async (): Promise<PgEventBus> => {
    const bus = new PgEventBus({ connectionString: url, queryTimeoutMs: 5000, log: silentLogger });
    await bus.start();
    buses.push(bus);
    return bus;
  };
  /** Resolves once `bus` has heard `count` events of `kind` from other processes. */
  const hear = (bus: PgEventBus, kind: string, count: number): { got: unknown[]; all: Promise<unknown[]> } => {
    const got: unknown[] = [];
    const all = new Promise<unknown[]>((resolve) =>
      bus.on(kind, (p, remote) => {
        if (remote) got.push(p);
        if (got.length === count) resolve(got);
      }),
    );
    return { got, all };
  };

  before(async () => {
    url = await freshDatabaseUrl('bus');
    const store = new PgStore({ connectionString: url, poolSize: 1 });
    await store.open();
    await store.close();
  });
  afterEach(async () => {
    for (const b of buses.splice(0)) await b.close();
  });
  after(async () => {
    await dropDatabaseSchema(url);
  });

  it('a turn that publishes more events than are held for a lost connection sends every one while connected', async () => {
    const a = await busOn();
    const b = await busOn();
    const heard = hear(b, 'many', 1500);
    // A fan-out's deliveries settling together publish this many activity events in one turn.
    for (let n = 0; n < 1500; n++) a.publish('many', { n });
    const got = await Promise.race([heard.all, new Promise<unknown[]>((r) => setTimeout(() => r(heard.got), 4000))]);
    expect(got.length).to.equal(1500);
    expect(got[0]).to.deep.equal({ n: 0 });
  });

  it("after a lost LISTEN connection, what was missed is told before what is heard during the catch-up", async () => {
    const a = await busOn();
    const b = await busOn();
    const heard = hear(a, 'change', 2);
    const processId = (bus: PgEventBus): number => (bus as unknown as { client: { processID: number } }).client.processID;
    const cutPid = processId(a);
    // The catch-up's read waits until a newer event has reached the new connection, as one
    // published between its LISTEN and the read's answer does.
    const query = pg.Client.prototype.query;
    let armed = true;
    pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
      const text = typeof args[0] === 'string' ? args[0] : '';
      if (armed && text.startsWith('SELECT seq, origin, envelope FROM bus_events')) {
        armed = false;
        const client = this;
        const newer = new Promise<void>((resolve) => client.once('notification', () => resolve()));
        b.publish('change', { version: 2 });
        return newer.then(() => (query as (...a: unknown[]) => unknown).apply(client, args));
      }
      return (query as (...a: unknown[]) => unknown).apply(this, args);
    } as typeof query;
    try {
      await adminQuery('SELECT pg_terminate_backend($1)', [cutPid]);
      // Missed: published while a is not listening (its reconnect waits 200 ms).
      b.publish('change', { version: 1 });
      const got = await Promise.race([heard.all, new Promise<unknown[]>((r) => setTimeout(() => r(heard.got), 5000))]);
      expect(armed, 'the catch-up ran').to.equal(false);
      expect(got).to.deep.equal([{ version: 1 }, { version: 2 }]);
    } finally {
      pg.Client.prototype.query = query;
    }
  });
});
