// Server-Sent Events fan-out for browsers. Streams follow channels (one per topic, and one for
// the operator's activity log); every event gets an id "<boot>-<seq>" and goes into a bounded
// backlog, so a browser reconnecting with Last-Event-ID is sent what it missed. An id from
// another boot, or older than the backlog, cannot be resumed: the stream is told with a
// "reset" event (carrying the current id) so the page can reload what it shows. One interval
// writes heartbeats so proxies do not close idle streams.
import { randomBytes } from 'node:crypto';

export interface StreamClient {
  channels: ReadonlySet<string>;
  /** Writes raw SSE text; false when the client is gone. */
  write(chunk: string): boolean;
}

interface Stored {
  seq: number;
  channel: string;
  event: string;
  data: unknown;
  /** The SSE text, made when a stream first needs it (most events are never sent to anyone). */
  text?: string;
}

export function topicChannel(url: string): string {
  return `topic:${url}`;
}
export const ACTIVITY_CHANNEL = 'activity';

export class StreamHub {
  private readonly boot = randomBytes(4).toString('hex');
  private readonly backlog: Stored[] = [];
  private readonly clients = new Set<StreamClient>();
  private seq = 0;
  private heartbeat: NodeJS.Timeout | undefined;

  constructor(private readonly backlogSize: number) {}

  start(heartbeatMs: number): void {
    this.heartbeat = setInterval(() => this.broadcast(':\n\n', () => true), heartbeatMs);
    this.heartbeat.unref();
  }

  stop(): void {
    clearInterval(this.heartbeat);
    for (const c of this.clients) c.write('event: bye\ndata: {}\n\n');
    this.clients.clear();
  }

  get size(): number {
    return this.clients.size;
  }

  /** Adds a client, replaying what it missed since `lastEventId`. Returns the detach function. */
  attach(client: StreamClient, lastEventId: string | undefined): () => void {
    client.write('retry: 2000\n\n');
    if (lastEventId) this.replay(client, lastEventId);
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
    if (this.backlog.length > this.backlogSize) this.backlog.shift();
    for (const c of this.clients) {
      if (c.channels.has(channel) && !c.write(this.textOf(stored))) this.clients.delete(c);
    }
  }

  private textOf(e: Stored): string {
    return (e.text ??= `id: ${this.boot}-${e.seq}\nevent: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`);
  }

  private replay(client: StreamClient, lastEventId: string): void {
    const [boot, seqText] = lastEventId.split('-');
    const last = Number(seqText);
    const oldest = this.backlog[0]?.seq ?? this.seq + 1;
    // Resumable when the id is ours and nothing after it has fallen out of the backlog.
    if (boot !== this.boot || !Number.isInteger(last) || last > this.seq || last + 1 < oldest) {
      // The reset carries the current id: the browser's Last-Event-ID moves to a point it can
      // resume from, so its next reconnect is not reset again for the same stale id.
      client.write(`id: ${this.boot}-${this.seq}\nevent: reset\ndata: ${JSON.stringify({ reason: 'cannot resume from that event id' })}\n\n`);
      return;
    }
    for (const e of this.backlog) if (e.seq > last && client.channels.has(e.channel)) client.write(this.textOf(e));
  }

  private broadcast(text: string, match: (c: StreamClient) => boolean): void {
    for (const c of this.clients) {
      if (match(c) && !c.write(text)) this.clients.delete(c);
    }
  }
}
