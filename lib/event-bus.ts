// How the parts of a hub hear of each other's events (topic changes for SSE streams, activity
// for the dashboard, subscriptions and publishes for the poller), whichever process they
// happened in. One process: an in-process EventEmitter. Several processes on one PostgreSQL
// database: the same, plus LISTEN/NOTIFY on one channel per schema, so a stream attached to any
// process sees every process's events. A process hears its own events at once, in-process,
// exactly as on one process; the database only carries them to the others. Each NOTIFY's
// events are also kept a few minutes in bus_events (migration 12), numbered: a process whose
// LISTEN connection was lost reads, once listening again, what came after the last it heard.
import { createHash, randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import pg from 'pg';
import type { Logger } from './log.js';
import { connectionUrl, isReadTimeout, KEEP_WHILE_IDLE, silenceBounds } from './store/pg-store.js';

/** `remote` is true for an event published by another process. */
export type BusListener = (payload: unknown, remote: boolean) => void;

export interface EventBus {
  /** Tells every listener, in this process at once and in the others soon after. */
  publish(kind: string, payload: unknown): void;
  on(kind: string, fn: BusListener): void;
  start(): Promise<void>;
  close(): Promise<void>;
}

export class LocalEventBus implements EventBus {
  protected readonly emitter = new EventEmitter().setMaxListeners(0);

  publish(kind: string, payload: unknown): void {
    this.emitter.emit(kind, payload, false);
  }

  on(kind: string, fn: BusListener): void {
    this.emitter.on(kind, fn);
  }

  async start(): Promise<void> {}

  async close(): Promise<void> {
    this.emitter.removeAllListeners();
  }
}

/** PostgreSQL refuses NOTIFY payloads of 8,000 bytes or more; this leaves room for the envelope. */
const NOTIFY_MAX_BYTES = 7900;

export interface PgEventBusOptions {
  connectionString: string;
  /** Longest a connect or a NOTIFY may go unanswered (DATABASE_QUERY_TIMEOUT_MS). */
  queryTimeoutMs: number;
  log: Logger;
  /**
   * Makes a payload too large for NOTIFY smaller (cuts text, drops a body); undefined when it
   * cannot. Payloads that still do not fit reach this process's listeners only.
   */
  fit?: (kind: string, payload: unknown, maxBytes: number) => unknown;
}

/** One NOTIFY: the events one process published in one turn of its event loop, as many as fit. */
interface Envelope {
  /** The publishing process. */
  o: string;
  /** [kind, payload as JSON text] each. */
  e: [string, string][];
  /** Its number in bus_events (absent from a process of a build before migration 12). */
  s?: number;
}

/** How long bus_events keeps an envelope: the longest loss of the LISTEN connection caught up on. */
const KEPT_SECONDS = 300;
/** How often a process deletes envelopes older than that, at most. */
const PRUNE_EVERY_MS = 30_000;
/**
 * Numbers are taken before their NOTIFY commits, so one process's may be heard after a higher
 * number from another: a catch-up reads this many below the highest heard, skipping those heard.
 */
const OVERLAP = 1000;
/** Events published while no connection is there to send them, kept for when one is (the oldest go first). */
const HELD_MAX = 1000;

// The envelopes, numbered in the order given, and NOTIFYed with their number in that order;
// the number goes first into the payload (the envelope is a JSON object, built here).
const SEND = `WITH kept AS (
    INSERT INTO bus_events (origin, envelope) SELECT $2, e FROM unnest($3::text[]) WITH ORDINALITY AS t(e, n) ORDER BY n RETURNING seq, envelope)
  SELECT pg_notify($1, '{"s":' || seq || ',' || substr(envelope, 2)) FROM kept ORDER BY seq`;

export class PgEventBus extends LocalEventBus {
  private readonly id = randomUUID();
  private client: pg.Client | undefined;
  private channel = '';
  private closed = false;
  private reconnect: NodeJS.Timeout | undefined;
  /** Events waiting for this turn's NOTIFY: [kind, payload JSON]. */
  private queued: [string, string][] = [];
  private flushing = false;
  /** The NOTIFY statement in flight: the next waits for it (a pg client runs one query at a time). */
  private sending: Promise<void> = Promise.resolve();
  /** The highest bus_events number heard (or the highest there when first listening). */
  private lastSeq: number | undefined;
  /**
   * The highest number there when first listening: a catch-up reads nothing at or below it.
   * Reading OVERLAP below the highest heard, a first reconnect told up to a thousand envelopes
   * (five minutes) published before this process started: old versions of topics reached its
   * streams as changes, and old activity its dashboards.
   */
  private startSeq = 0;
  /** The numbers heard within OVERLAP below lastSeq: a catch-up skips them. */
  private heardSeqs = new Set<number>();
  private lastPrune = 0;
  /**
   * Payloads heard while a catch-up's read is under way, told after what it read: heard first,
   * an event published after the loss was told before the ones missed during it, and a stream
   * ended on a topic's older version.
   */
  private heardDuringCatchUp: (string | undefined)[] | undefined;
  /**
   * False once the role was refused bus_events (rights granted table by table before migration
   * 12): its events then go by NOTIFY alone, as before, rather than not at all.
   */
  private keeping = true;

  constructor(private readonly opts: PgEventBusOptions) {
    super();
  }

  /** Connects and listens; the channel is named after the schema, so hubs in other schemas of the database are not heard. */
  override async start(): Promise<void> {
    // Bounded like the store's (silenceBounds): on a silent database host the NOTIFYs waited for
    // ever, one behind the other, and close() with them; a reconnect never gave up and tried
    // again; and a LISTEN connection whose host had gone was never found out, so nothing other
    // processes published was heard again.
    const client = new pg.Client({
      connectionString: await connectionUrl(this.opts.connectionString),
      application_name: 'pushbutton-events',
      connectionTimeoutMillis: this.opts.queryTimeoutMs,
      ...silenceBounds(this.opts.queryTimeoutMs),
    });
    // Listened to from the start: a connection lost before LISTEN is answered would otherwise be
    // an 'error' event with no listener, which ends the process. (Until this.client is set,
    // restart() ignores it: the failed query makes start() fail instead.)
    client.on('error', (e) => {
      this.opts.log.warn('event bus connection lost; reconnecting', { error: e.message });
      this.restart(client);
    });
    // Heard from LISTEN on, during the catch-up too: an envelope both heard and read is emitted once.
    client.on('notification', (n) => this.heard(n.payload));
    await client.connect();
    try {
      const { rows } = await client.query<{ schema: string }>('SELECT current_schema() AS schema');
      this.channel = `pushbutton_${createHash('sha256').update(rows[0]?.schema ?? '').digest('hex').slice(0, 16)}`;
      await client.query(KEEP_WHILE_IDLE);
      await client.query(`LISTEN ${this.channel}`);
      await this.catchUp(client);
    } catch (e) {
      await client.end().catch(() => undefined);
      throw e;
    }
    client.on('end', () => this.restart(client));
    this.client = client;
    if (this.queued.length > 0 && !this.flushing) {
      this.flushing = true;
      setImmediate(() => this.flush());
    }
  }

  /**
   * Emits what other processes published since the last envelope heard, now that NOTIFYs are
   * heard again; on the first start, only notes where the record ends.
   */
  private async catchUp(client: pg.Client): Promise<void> {
    if (!this.keeping) return;
    if (this.lastSeq === undefined) {
      const { rows } = await this.kept(client.query<{ seq: string | null }>('SELECT max(seq) AS seq FROM bus_events'));
      this.startSeq = Number(rows[0]?.seq ?? 0);
      this.lastSeq ??= this.startSeq;
      return;
    }
    const from = this.lastSeq;
    const held: (string | undefined)[] = [];
    this.heardDuringCatchUp = held;
    let rows: { seq: string; origin: string; envelope: string }[];
    try {
      ({ rows } = await this.kept(
        client.query<{ seq: string; origin: string; envelope: string }>('SELECT seq, origin, envelope FROM bus_events WHERE seq > $1 AND origin <> $2 ORDER BY seq', [
          Math.max(this.startSeq, from - OVERLAP),
          this.id,
        ]),
      ));
    } finally {
      this.heardDuringCatchUp = undefined;
    }
    let caught = 0;
    for (const row of rows) if (this.received(Number(row.seq), row.envelope)) caught++;
    for (const payload of held) this.heard(payload);
    if (caught > 0) this.opts.log.info('event bus caught up on events missed while not listening', { events: caught });
  }

  override publish(kind: string, payload: unknown): void {
    super.publish(kind, payload);
    if (this.closed) return;
    const room = NOTIFY_MAX_BYTES - 100;
    // Measured as it travels: the payload's JSON, escaped as a string inside the envelope.
    const sizeOf = (t: string): number => Buffer.byteLength(JSON.stringify(t));
    let text = JSON.stringify(payload);
    if (sizeOf(text) > room) {
      const fitted = this.opts.fit?.(kind, payload, Math.floor(room / 2));
      text = fitted === undefined ? '' : JSON.stringify(fitted);
      if (text === '' || sizeOf(text) > room) {
        this.opts.log.warn('event too large for other processes; only this one heard it', { kind });
        return;
      }
    }
    this.queued.push([kind, text]);
    // Only while there is no connection: connected, this turn's events all go at its end (a
    // fan-out's deliveries settling together publish thousands in one turn).
    while (!this.client && this.queued.length > HELD_MAX) this.queued.shift();
    if (!this.flushing && this.client) {
      this.flushing = true;
      setImmediate(() => this.flush());
    }
  }

  /**
   * Sends what was published this turn, packed into as few NOTIFYs as fit, in one statement
   * after the previous turn's: in order, on the one connection, one query at a time.
   */
  private flush(): void {
    this.flushing = false;
    // Without a connection (lost, being replaced), the events wait for the next one (start()).
    const client = this.client;
    if (!client) return;
    const events = this.queued;
    this.queued = [];
    const head = JSON.stringify({ o: this.id, e: [] } satisfies Envelope);
    const envelopes: string[] = [];
    let batch: [string, string][] = [];
    let size = Buffer.byteLength(head);
    const close = (): void => {
      if (batch.length === 0) return;
      envelopes.push(JSON.stringify({ o: this.id, e: batch } satisfies Envelope));
      batch = [];
      size = Buffer.byteLength(head);
    };
    for (const ev of events) {
      // Each event's JSON is escaped again as a string inside the envelope.
      const bytes = Buffer.byteLength(JSON.stringify(ev)) + 1;
      if (size + bytes > NOTIFY_MAX_BYTES) close();
      batch.push(ev);
      size += bytes;
    }
    close();
    if (envelopes.length === 0) return;
    this.sending = this.sending
      // A connection given up on (below) sends nothing more: each NOTIFY queued behind it would
      // wait out its own timeout, and close() with them.
      .then(() => (this.client === client ? this.send(client, envelopes) : undefined))
      .then(noop, (e: Error) => {
        this.opts.log.warn('events not sent to other processes', { error: e.message });
        // Unanswered: the connection is replaced, as a lost one is.
        if (isReadTimeout(e)) this.restart(client);
      });
  }

  /** Keeps and NOTIFYs the envelopes; now and then deletes those kept long enough. */
  private async send(client: pg.Client, envelopes: string[]): Promise<void> {
    if (this.keeping) {
      const sent = await this.kept(client.query(SEND, [this.channel, this.id, envelopes]));
      if (sent.rowCount !== 0) {
        if (Date.now() - this.lastPrune < PRUNE_EVERY_MS) return;
        this.lastPrune = Date.now();
        await this.kept(client.query(`DELETE FROM bus_events WHERE created_at < now() - interval '${KEPT_SECONDS} seconds'`));
        return;
      }
    }
    await client.query('SELECT pg_notify($1, e) FROM unnest($2::text[]) WITH ORDINALITY AS t(e, n) ORDER BY n', [this.channel, envelopes]);
  }

  /** A statement on bus_events; refused it (42501), an empty answer, and NOTIFY alone from then on. */
  private async kept<R extends pg.QueryResultRow>(q: Promise<pg.QueryResult<R>>): Promise<pg.QueryResult<R>> {
    try {
      return await q;
    } catch (e) {
      if ((e as { code?: unknown }).code !== '42501') throw e;
      if (this.keeping) {
        this.opts.log.warn('events not kept for catching up after a lost LISTEN connection: the role may not use table bus_events (GRANT SELECT, INSERT, DELETE ON bus_events)', {
          error: (e as Error).message,
        });
      }
      this.keeping = false;
      return { rows: [], rowCount: 0, command: '', oid: 0, fields: [] };
    }
  }

  override async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.reconnect);
    const client = this.client;
    this.client = undefined;
    await this.sending; // what was published before close still reaches the others
    await client?.end().catch(() => undefined);
    await super.close();
  }

  private heard(payload: string | undefined): void {
    if (this.heardDuringCatchUp) return void this.heardDuringCatchUp.push(payload);
    if (payload === undefined) return;
    let e: unknown;
    try {
      e = JSON.parse(payload);
    } catch {
      return;
    }
    // Anyone who can connect to the database can NOTIFY on the channel: a payload of another
    // shape is ignored, not a throw inside the connection's listener (which ends the process).
    if (!isEnvelope(e)) return;
    if (e.s === undefined) {
      if (e.o !== this.id) this.emitAll(e);
    } else if (this.received(e.s) && e.o !== this.id) {
      this.emitAll(e);
    }
  }

  /**
   * Notes envelope number `seq` as heard; false if it was already. With its text (from a
   * catch-up), also emits it unless it is this process's own.
   */
  private received(seq: number, envelope?: string): boolean {
    const last = this.lastSeq ?? 0;
    if (this.heardSeqs.has(seq)) return false;
    // A NOTIFY is heard once, however late: dropped for its number, an event another process
    // numbered before a stall and committed after others took a thousand numbers was never told.
    // Not remembered: no catch-up reads that far back (and a flood of old numbers grew the set).
    if (seq <= last - OVERLAP) return envelope === undefined;
    this.heardSeqs.add(seq);
    if (seq > last) {
      this.lastSeq = seq;
      if (this.heardSeqs.size > 2 * OVERLAP) for (const s of this.heardSeqs) if (s <= seq - OVERLAP) this.heardSeqs.delete(s);
    }
    if (envelope !== undefined) {
      let e: unknown;
      try {
        e = JSON.parse(envelope);
      } catch {
        return true;
      }
      if (isEnvelope(e) && e.o !== this.id) this.emitAll(e);
    }
    return true;
  }

  private emitAll(e: Envelope): void {
    for (const [kind, text] of e.e) {
      try {
        this.emitter.emit(kind, JSON.parse(text), true);
      } catch (err) {
        this.opts.log.warn('event from another process not handled', { kind, error: err instanceof Error ? err.message : String(err) });
      }
    }
  }

  /** A lost LISTEN connection is replaced; the new one catches up on what others published meanwhile (catchUp). */
  private restart(lost: pg.Client): void {
    if (this.closed || this.client !== lost) return;
    this.client = undefined;
    lost.end().catch(() => undefined);
    const retry = (): void => {
      if (this.closed) return;
      this.start().catch((e: Error) => {
        this.opts.log.warn('event bus reconnect failed', { error: e.message });
        this.reconnect = setTimeout(retry, 1000);
        this.reconnect.unref();
      });
    };
    this.reconnect = setTimeout(retry, 200);
    this.reconnect.unref();
  }
}

function noop(): void {}

function isEnvelope(e: unknown): e is Envelope {
  if (typeof e !== 'object' || e === null) return false;
  const { o, e: events } = e as { o?: unknown; e?: unknown };
  const { s } = e as { s?: unknown };
  return typeof o === 'string' && (s === undefined || Number.isSafeInteger(s)) && Array.isArray(events) && events.every((ev) => Array.isArray(ev) && typeof ev[0] === 'string' && typeof ev[1] === 'string');
}
