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
    const got = await Promise.race([heard.all, new Promise<unknown[]>((r) => setTimeout(() => r(heard.got), 10_000))]);
    expect(got.length).to.equal(1500);
    expect(got[0]).to.deep.equal({ n: 0 });
  });

  it("after a lost LISTEN connection, what was missed is told before what is heard during the catch-up", async () => {
    const a = await busOn();
    const b = await busOn();
    const heard = hear(a, 'change', 2);
    const processId = (bus: PgEventBus): number => (bus as unknown as { client: { processID: number } }).client.processID;
    const cutPid = processId(a);
    // The catch-up's read is answered only once a newer event has reached the new connection,
    // as one published while the read is under way is.
    const query = pg.Client.prototype.query;
    let armed = true;
    pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
      const text = typeof args[0] === 'string' ? args[0] : '';
      if (armed && text.startsWith('SELECT seq, origin, envelope FROM bus_events')) {
        armed = false;
        const client = this;
        // Read first: the newer one is in no row of it, only in the NOTIFY.
        return ((query as (...a: unknown[]) => Promise<unknown>).apply(client, args)).then(async (read) => {
          const newer = new Promise<void>((resolve) => client.once('notification', () => resolve()));
          b.publish('change', { version: 2 });
          await newer;
          return read;
        });
      }
      return (query as (...a: unknown[]) => unknown).apply(this, args);
    } as typeof query;
    try {
      await adminQuery('SELECT pg_terminate_backend($1)', [cutPid]);
      // Missed: published while a is not listening (its reconnect waits 200 ms).
      b.publish('change', { version: 1 });
      const got = await Promise.race([heard.all, new Promise<unknown[]>((r) => setTimeout(() => r(heard.got), 10_000))]);
      expect(armed, 'the catch-up ran').to.equal(false);
      expect(got).to.deep.equal([{ version: 1 }, { version: 2 }]);
    } finally {
      pg.Client.prototype.query = query;
    }
  });

  /** Cuts `bus`'s LISTEN connection and waits until it listens again (its reconnect waits 200 ms). */
  const cut = async (bus: PgEventBus, meanwhile: () => void = () => undefined): Promise<void> => {
    const connection = (): { processID: number } | undefined => (bus as unknown as { client?: { processID: number } }).client;
    const before = connection()!;
    await adminQuery('SELECT pg_terminate_backend($1)', [before.processID]);
    while (connection() === before) await new Promise((r) => setTimeout(r, 10));
    meanwhile();
    while (connection() === undefined) await new Promise((r) => setTimeout(r, 20));
  };
  /** Keeps an envelope in bus_events as another process would, without its NOTIFY; its number. */
  const keep = async (sql: pg.Client, kind: string, payload: unknown): Promise<number> => {
    const envelope = JSON.stringify({ o: 'another-process', e: [[kind, JSON.stringify(payload)]] });
    const { rows } = await sql.query<{ seq: string }>('INSERT INTO bus_events (origin, envelope) VALUES ($1, $2) RETURNING seq', ['another-process', envelope]);
    return Number(rows[0]!.seq);
  };

  it('events published while the connection is lost reach the other processes once it is back', async () => {
    const a = await busOn();
    const b = await busOn();
    const heard = hear(b, 'held', 2);
    await cut(a, () => {
      a.publish('held', { n: 1 });
      a.publish('held', { n: 2 });
    });
    const got = await Promise.race([heard.all, new Promise<unknown[]>((r) => setTimeout(() => r(heard.got), 10_000))]);
    expect(got).to.deep.equal([{ n: 1 }, { n: 2 }]);
  });

  it('a first reconnect does not tell what was kept before the process started; it tells an envelope numbered below one heard but not heard itself', async () => {
    const sql = new pg.Client({ connectionString: url });
    await sql.connect();
    try {
      await keep(sql, 'kept', { before: 'start' });
      const a = await busOn();
      const heard: unknown[] = [];
      a.on('kept', (p, remote) => remote && heard.push(p));
      // Numbered before a NOTIFY heard, committed after it: heard out of number order.
      const late = await keep(sql, 'kept', { late: true });
      const channel = `pushbutton_${(a as unknown as { channel: string }).channel.slice('pushbutton_'.length)}`;
      const envelope = JSON.stringify({ s: late + 1, o: 'another-process', e: [['kept', JSON.stringify({ heard: true })]] });
      await sql.query('SELECT setval(pg_get_serial_sequence($1, $2), $3)', ['bus_events', 'seq', late + 1]);
      await sql.query('SELECT pg_notify($1, $2)', [channel, envelope]);
      while (heard.length === 0) await new Promise((r) => setTimeout(r, 10));
      await cut(a);
      expect(heard).to.deep.equal([{ heard: true }, { late: true }]);
    } finally {
      await sql.end();
    }
  });

  it('remembers a bounded number of the envelope numbers it heard', async () => {
    const a = await busOn();
    const channel = (a as unknown as { channel: string }).channel;
    const heardSeqs = (a as unknown as { heardSeqs: Set<number> }).heardSeqs;
    const sql = new pg.Client({ connectionString: url });
    await sql.connect();
    try {
      await sql.query(`SELECT pg_notify($1, json_build_object('s', 1000000 + g, 'o', 'another-process', 'e', '[]'::json)::text) FROM generate_series(1, 5000) g`, [channel]);
      while (!heardSeqs.has(1005000)) await new Promise((r) => setTimeout(r, 10));
      expect(heardSeqs.size).to.be.at.most(2001);
    } finally {
      await sql.end();
    }
  });

  it('tells an envelope heard late, numbered far below the highest heard', async () => {
    const a = await busOn();
    const heard = hear(a, 'late', 2);
    const channel = (a as unknown as { channel: string }).channel;
    const sql = new pg.Client({ connectionString: url });
    await sql.connect();
    try {
      // Numbered first, committed last: a statement that stalled while others took 2,000 numbers.
      for (const [s, n] of [[2_005_000, 'second'], [2_003_000, 'first']] as const) {
        await sql.query('SELECT pg_notify($1, $2)', [channel, JSON.stringify({ s, o: 'another-process', e: [['late', JSON.stringify({ n })]] })]);
      }
      const got = await Promise.race([heard.all, new Promise<unknown[]>((r) => setTimeout(() => r(heard.got), 10_000))]);
      expect(got).to.deep.equal([{ n: 'second' }, { n: 'first' }]);
    } finally {
      await sql.end();
    }
  });
});
