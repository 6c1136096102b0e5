// A raw Server-Sent Events client over node:http, written from the WHATWG event-stream rules
// and independent of the hub's code: it records every event (id, event, data) and every
// comment line (heartbeats) exactly as they arrive, and can send any request headers
// (Last-Event-ID among them).
import http from 'node:http';

export interface SseEvent {
  /** The id field of this event, or undefined when it had none. */
  id: string | undefined;
  event: string;
  data: string;
  at: number;
}

export interface SseStream {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** The whole body received so far, for the few tests that look at the wire itself. */
  raw(): string;
  events: SseEvent[];
  /** Comment lines (":" onwards), e.g. heartbeats. */
  comments: { text: string; at: number }[];
  retry: number | undefined;
  /** What an EventSource would send as Last-Event-ID if it reconnected now. */
  lastEventId(): string | undefined;
  /** Resolves with the first `count` events that match; rejects after `timeoutMs`. */
  waitFor(count: number, filter?: (e: SseEvent) => boolean, timeoutMs?: number): Promise<SseEvent[]>;
  waitForComments(count: number, timeoutMs?: number): Promise<void>;
  /** Events of one type, with their data parsed as JSON. */
  json<T = Record<string, unknown>>(event: string): T[];
  ended: Promise<void>;
  close(): void;
}

export interface NonStream {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/**
 * Opens `url`. A 200 text/event-stream answer resolves to a live SseStream; any other answer is
 * read to its end and resolves to { status, headers, body }.
 */
export function openSse(url: string, headers: Record<string, string> = {}): Promise<SseStream | NonStream> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers: { accept: 'text/event-stream', ...headers } }, (res) => {
      const status = res.statusCode ?? 0;
      if (status !== 200 || !String(res.headers['content-type'] ?? '').startsWith('text/event-stream')) {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        return;
      }
      resolve(stream(req, res));
    });
    req.on('error', reject);
  });
}

/** openSse for tests that expect a stream: fails with the answer when it is not one. */
export async function openStream(url: string, headers: Record<string, string> = {}): Promise<SseStream> {
  const s = await openSse(url, headers);
  if (!('events' in s)) throw new Error(`expected an event stream from ${url}, got ${s.status}: ${s.body}`);
  return s;
}

function stream(req: http.ClientRequest, res: http.IncomingMessage): SseStream {
  let raw = '';
  let buffer = '';
  let pending: { id?: string; event?: string; data: string[] } = { data: [] };
  let lastId: string | undefined;
  const waiters = new Set<() => void>();
  const wake = (): void => {
    for (const w of [...waiters]) w();
  };

  const s: SseStream = {
    status: res.statusCode ?? 0,
    headers: res.headers,
    raw: () => raw,
    events: [],
    comments: [],
    retry: undefined,
    lastEventId: () => lastId,
    waitFor(count, filter = () => true, timeoutMs = 5000) {
      return waitUntil(
        () => {
          const m = s.events.filter(filter);
          return m.length >= count ? m.slice(0, count) : undefined;
        },
        timeoutMs,
        () => `timed out waiting for ${count} event(s); got ${s.events.filter(filter).length}: ${JSON.stringify(s.events.map((e) => e.event))}`,
      );
    },
    async waitForComments(count, timeoutMs = 5000) {
      await waitUntil(
        () => (s.comments.length >= count ? true : undefined),
        timeoutMs,
        () => `timed out waiting for ${count} comment line(s); got ${s.comments.length}`,
      );
    },
    json<T>(event: string): T[] {
      return s.events.filter((e) => e.event === event).map((e) => JSON.parse(e.data) as T);
    },
    ended: new Promise<void>((resolve) => {
      res.on('close', () => {
        resolve();
        wake();
      });
    }),
    close() {
      req.destroy();
      res.destroy();
    },
  };

  function waitUntil<T>(check: () => T | undefined, timeoutMs: number, why: () => string): Promise<T> {
    const now = check();
    if (now !== undefined) return Promise.resolve(now);
    return new Promise<T>((resolve, reject) => {
      const done = (): void => {
        const v = check();
        if (v === undefined) return;
        clearTimeout(timer);
        waiters.delete(done);
        resolve(v);
      };
      const timer = setTimeout(() => {
        waiters.delete(done);
        reject(new Error(why()));
      }, timeoutMs);
      waiters.add(done);
    });
  }

  const line = (l: string): void => {
    if (l === '') {
      // Dispatch: an event with no data is not dispatched, but its id still counts.
      if (pending.id !== undefined) lastId = pending.id;
      if (pending.data.length > 0) {
        s.events.push({ id: pending.id, event: pending.event ?? 'message', data: pending.data.join('\n'), at: Date.now() });
      }
      pending = { data: [] };
      return;
    }
    if (l.startsWith(':')) {
      s.comments.push({ text: l.slice(1), at: Date.now() });
      return;
    }
    const colon = l.indexOf(':');
    const field = colon === -1 ? l : l.slice(0, colon);
    let value = colon === -1 ? '' : l.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') pending.data.push(value);
    else if (field === 'event') pending.event = value;
    else if (field === 'id') pending.id = value;
    else if (field === 'retry' && /^\d+$/.test(value)) s.retry = Number(value);
  };

  res.setEncoding('utf8');
  res.on('data', (chunk: string) => {
    raw += chunk;
    buffer += chunk;
    let i: number;
    while ((i = buffer.search(/\r\n|\r|\n/)) !== -1) {
      const sep = buffer.startsWith('\r\n', i) ? 2 : 1;
      line(buffer.slice(0, i));
      buffer = buffer.slice(i + sep);
    }
    wake();
  });
  res.on('error', () => {});
  req.on('error', () => {});
  return s;
}
