// Server-Sent Events fan-out for browsers. Streams follow channels (one per topic, and one for
// the operator's activity log); every event gets an id "<boot>-<seq>" and goes into a bounded
// backlog, so a browser reconnecting with Last-Event-ID is sent what it missed. An id from
// another boot, or one after which an event of the stream's own channels fell out of the
// backlog, cannot be resumed: the stream is told with a "reset" event (carrying the current id)
// so the page can reload what it shows. One interval writes heartbeats so proxies do not close
// idle streams.
//
// Every blank line the hub sends ends an event that has data and a name. Real clients differ
// from the WHATWG rules (and from each other) about a block without data: eventsource 3+ and
// event-source-polyfill ignore its id (so a stream that dropped before its first event came back
// with no Last-Event-ID and missed what changed meanwhile), while @microsoft/fetch-event-source
// and extended-eventsource hand it to the page as a message with empty data (a page parsing every
// message as JSON threw on the retry hint and every heartbeat, and fetch-event-source reconnected
// each time, in a loop). So the retry hint and heartbeats are lines that end no event, and the
// id a stream opens with comes in a "ready" event.
import { randomBytes } from 'node:crypto';
import { STREAM_WORDS } from './messages.js';

export interface StreamClient {
  channels: ReadonlySet<string>;
  /**
   * Writes raw SSE text, as bytes shared by every stream it goes to; false when the client is
   * gone. A string was encoded into a copy of its own per stream, held until that stream's
   * client read it: a thousand clients that stopped reading held ~170 MB of copies of the
   * same events (see SSE_MAX_BUFFERED_BYTES in README), and every fan-out encoded each event
   * once per stream.
   */
  write(chunk: Buffer): boolean;
  /** Ends the response once what was written has gone out. */
  end(): void;
}

interface Stored {
  seq: number;
  channel: string;
  event: string;
  data: unknown;
  /** The SSE text's bytes, made when a stream first needs them (most events are never sent to anyone). */
  bytes?: Buffer;
}

export function topicChannel(url: string): string {
  return `topic:${url}`;
}
export const ACTIVITY_CHANNEL = 'activity';

/** The first byte of a comment line: a heartbeat, which a stream may drop (routes/stream.ts). */
export const COMMENT = 0x3a;
const HEARTBEAT = Buffer.from(':\n');
const RETRY = Buffer.from('retry: 2000\n');
const BYE = Buffer.from('event: bye\ndata: {}\n\n');

/**
 * Streams written to in one turn of the event loop; a fan-out to more goes on in the next turns.
 * Written in one go, a change followed by 5,000 streams (or a heartbeat) blocked the event loop
 * ~170 ms (measured on 2 cores), every ping, delivery and /healthz waiting behind it.
 */
export const STREAMS_PER_TURN = 250;
/**
 * Writes that may wait for a later turn (~10 events to 5,000 streams). Past it a publish writes
 * the oldest ones itself, as all of them were before: events coming faster than turns go by
 * (a fan-out's delivery events to many dashboards) must not queue a list of streams each without end.
 */
export const MAX_QUEUED_WRITES = 50_000;

/** An event (or heartbeat) on its way to the streams that were following its channel when it came. */
interface FanOut {
  bytes: Buffer;
  targets: StreamClient[];
  next: number;
}

/** Channels whose last eviction is remembered; past it the oldest-updated is forgotten. */
const EVICTED_CHANNELS_KEPT = 10_000;

export class StreamHub {
  private readonly boot = randomBytes(4).toString('hex');
  /** Events kept for replay from `head` on; those before it were evicted, cut off in batches. */
  private readonly backlog: Stored[] = [];
  private head = 0;
  private readonly clients = new Set<StreamClient>();
  private seq = 0;
  /**
   * Per channel, the newest seq that fell out of the backlog. The backlog is shared, so other
   * channels' traffic pushes a quiet channel's events out; a stream is reset only for what its
   * own channels lost, not for what went through on others. Bounded (a stranger can name any
   * topic): a forgotten channel counts as having lost everything up to `floor`, the newest seq
   * forgotten, which at worst resets a stream that could have resumed.
   */
  private readonly evicted = new Map<string, number>();
  /**
   * Every eviction as [channel, seq], oldest first from `evictionsHead`: the order of last update
   * that choosing the channel to forget needs. A record is stale once its channel was evicted
   * again (its seq is no longer the channel's). Kept beside the Map rather than moving a channel
   * to the Map's end (delete then set) on each eviction: V8 leaves a deleted entry in its bucket's
   * chain until the table is rehashed, so one busy channel (the activity log's) made every lookup
   * of it walk thousands of such entries, ~3 µs per event with 1,500 channels remembered and
   * ~30 µs with 10,000 (every ping and every delivery publishes one).
   */
  private evictions: [string, number][] = [];
  private evictionsHead = 0;
  private floor = 0;
  private heartbeat: NodeJS.Timeout | undefined;
  /** Fan-outs not yet written to all their streams, oldest first: each stream gets events in order. */
  private readonly fanOuts: FanOut[] = [];
  private turn: NodeJS.Immediate | undefined;
  /** Writes the fan-outs have yet to make. */
  private queued = 0;

  constructor(
    private readonly backlogSize: number,
    private readonly channelsKept = EVICTED_CHANNELS_KEPT,
  ) {}

  start(heartbeatMs: number): void {
    this.heartbeat = setInterval(() => this.broadcast(HEARTBEAT, () => true), heartbeatMs);
    this.heartbeat.unref();
  }

  stop(): void {
    clearInterval(this.heartbeat);
    clearImmediate(this.turn);
    // Forgotten too: left set, a later fan-out (to a stream attached during the shutdown's grace)
    // found a turn scheduled and never scheduled its own, past its first STREAMS_PER_TURN streams.
    this.turn = undefined;
    // What was published before the stop reaches its streams ahead of the goodbye.
    for (const f of this.fanOuts) this.write(f, Infinity);
    this.fanOuts.length = 0;
    this.queued = 0;
    // Ended, not left open: a stream left to the shutdown's grace period is cut mid-chunk.
    for (const c of this.clients) {
      c.write(BYE);
      c.end();
    }
    this.clients.clear();
  }

  get size(): number {
    return this.clients.size;
  }

  /** Adds a client, replaying what it missed since `lastEventId`. Returns the detach function. */
  attach(client: StreamClient, lastEventId: string | undefined): () => void {
    // A field line alone: it takes effect as it is read, and the event after it carries it.
    client.write(RETRY);
    // The current id, in an event of its own, so a stream that drops before its first change
    // reconnects with an id and gets what it missed. After a replay it moves the id past the
    // other channels' events the stream skipped.
    if (!(lastEventId && this.replay(client, lastEventId))) client.write(Buffer.from(`id: ${this.boot}-${this.seq}\nevent: ready\ndata: {}\n\n`));
    this.clients.add(client);
    return () => this.clients.delete(client);
  }

  /**
   * Sends an event to the streams that follow `channel` and keeps it for replay. `data` must not
   * change afterwards: it is serialised only when a stream needs it, so that a fan-out's
   * thousands of delivery events cost nothing while nobody watches.
   */
  publish(channel: string, event: string, data: unknown): void {
    const stored: Stored = { seq: ++this.seq, channel, event, data };
    this.backlog.push(stored);
    if (this.backlog.length - this.head > this.backlogSize) {
      this.evict(this.backlog[this.head++]!);
      // shift() per event copies the whole array once it is large (an SSE_BACKLOG of 100,000
      // made every delivery event cost ~100 µs); a batch as long as the backlog costs as much
      // once per that many events.
      if (this.head >= Math.max(this.backlogSize, 64)) {
        this.backlog.splice(0, this.head);
        this.head = 0;
      }
    }
    const targets: StreamClient[] = [];
    for (const c of this.clients) if (c.channels.has(channel)) targets.push(c);
    if (targets.length > 0) this.fanOut(this.bytesOf(stored), targets);
  }

  private bytesOf(e: Stored): Buffer {
    return (e.bytes ??= Buffer.from(`id: ${this.boot}-${e.seq}\nevent: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`));
  }

  private evict(e: Stored): void {
    this.evicted.set(e.channel, e.seq);
    this.evictions.push([e.channel, e.seq]);
    if (this.evicted.size > this.channelsKept) {
      // The oldest-updated channel: the first record that is still its channel's last eviction.
      for (;;) {
        const [channel, seq] = this.evictions[this.evictionsHead++]!;
        if (this.evicted.get(channel) !== seq) continue;
        this.evicted.delete(channel);
        this.floor = Math.max(this.floor, seq);
        break;
      }
    }
    // Stale records dropped once they outnumber the live ones: bounded, at O(1) per eviction.
    if (this.evictions.length - this.evictionsHead > 2 * this.evicted.size + 64) {
      this.evictions = this.evictions.slice(this.evictionsHead).filter(([channel, seq]) => this.evicted.get(channel) === seq);
      this.evictionsHead = 0;
    }
  }

  /** Sends what the client missed, or a reset; true when it sent a reset. */
  private replay(client: StreamClient, lastEventId: string): boolean {
    const [boot, seqText] = lastEventId.split('-');
    const last = Number(seqText);
    const lost = (): boolean => [...client.channels].some((c) => (this.evicted.get(c) ?? this.floor) > last);
    if (boot !== this.boot || !Number.isInteger(last) || last < 0 || last > this.seq || lost()) {
      // The reset carries the current id: the browser's Last-Event-ID moves to a point it can
      // resume from, so its next reconnect is not reset again for the same stale id.
      client.write(Buffer.from(`id: ${this.boot}-${this.seq}\nevent: reset\ndata: ${JSON.stringify({ reason: STREAM_WORDS.cannotResume })}\n\n`));
      return true;
    }
    for (let i = this.head; i < this.backlog.length; i++) {
      const e = this.backlog[i]!;
      if (e.seq > last && client.channels.has(e.channel)) client.write(this.bytesOf(e));
    }
    return false;
  }

  private broadcast(text: Buffer, match: (c: StreamClient) => boolean): void {
    const targets = [...this.clients].filter(match);
    if (targets.length > 0) this.fanOut(text, targets);
  }

  /**
   * Writes to the first STREAMS_PER_TURN targets now (unless earlier fan-outs are still under
   * way: this one waits behind them), the rest in the next turns. A stream attached meanwhile is
   * not among the targets: its replay or its "ready" id already covers the event.
   */
  private fanOut(bytes: Buffer, targets: StreamClient[]): void {
    const f: FanOut = { bytes, targets, next: 0 };
    if (this.fanOuts.length === 0 && this.write(f, STREAMS_PER_TURN)) return;
    this.fanOuts.push(f);
    this.queued += f.targets.length - f.next;
    if (this.queued > MAX_QUEUED_WRITES) this.writeQueued(this.queued - MAX_QUEUED_WRITES);
    if (this.fanOuts.length > 0) this.turn ??= setImmediate(() => this.nextTurn());
  }

  private nextTurn(): void {
    this.turn = undefined;
    this.writeQueued(STREAMS_PER_TURN);
    if (this.fanOuts.length > 0) this.turn = setImmediate(() => this.nextTurn());
  }

  /** Makes `count` of the queued writes, oldest first. */
  private writeQueued(count: number): void {
    while (this.fanOuts.length > 0 && count > 0) {
      const f = this.fanOuts[0]!;
      const before = f.next;
      if (this.write(f, count)) this.fanOuts.shift();
      count -= f.next - before;
      this.queued -= f.next - before;
    }
  }

  /** Writes to up to `count` more of the fan-out's targets; true when it has reached them all. */
  private write(f: FanOut, count: number): boolean {
    const end = Math.min(f.targets.length, f.next + count);
    for (; f.next < end; f.next++) {
      const c = f.targets[f.next]!;
      // Gone meanwhile: detached, or dropped by an earlier write.
      if (this.clients.has(c) && !c.write(f.bytes)) this.clients.delete(c);
    }
    return f.next === f.targets.length;
  }
}
