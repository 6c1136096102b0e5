// A change as browsers (SSE) and the other hub processes (NOTIFY) receive it: the feed's new
// entries, or the body as text for other content.
import { decodeBytes, mediaType } from './media-type.js';
import type { Content } from './notifier/sender.js';

/**
 * A change of up to this many bytes reaches browsers with its new entries (or, for other
 * content, as text); a larger one is announced without them (see LazyChange).
 */
export const STREAM_BODY_MAX = 64 * 1024;

export interface ChangeEvent {
  topic: string;
  version: number;
  contentType: string;
  entries: { summary: string | null }[] | null;
  body: string | null;
}

/** What a browser receives for a change: the new entries, or the raw body for other content (or entries that do not parse). */
function changeEvent(content: Content): ChangeEvent {
  const entries = content.entries?.() ?? null;
  const textual = /^(text\/|application\/(json|xml|[\w.+-]+\+(json|xml)))/i.test(content.contentType);
  // Text in its own charset (the Content-Type's, a BOM's, an XML declaration's): an ISO-8859-1
  // page read as UTF-8 reached browsers with U+FFFD in place of every accented letter.
  const body = !entries && textual && content.body.length <= STREAM_BODY_MAX ? decodeBytes(content.body, mediaType(content.contentType).charset) : null;
  return { topic: content.topic, version: content.version, contentType: content.contentType, entries, body };
}

/**
 * A change on the bus, made into its ChangeEvent (the feed's new entries read, a full XML parse
 * each) when it is first serialised: for a stream, a replay, or another process. On the
 * embedded store with no browser watching, that is never. Until then it holds the content, at
 * most STREAM_BODY_MAX bytes of it: a larger change is announced without its entries or body.
 * Reading them would be a parse of up to MAX_RESPONSE_BYTES on every change, and the streams'
 * backlog keeps a thousand events: a publisher of megabyte-long entries filled the heap with
 * them within minutes.
 */
export class LazyChange {
  readonly topic: string;
  private held: { content: Content } | { event: ChangeEvent };

  constructor(content: Content) {
    this.topic = content.topic;
    this.held =
      content.body.length > STREAM_BODY_MAX
        ? { event: { topic: content.topic, version: content.version, contentType: content.contentType, entries: null, body: null } }
        : { content };
  }

  toJSON(): ChangeEvent {
    if ('content' in this.held) this.held = { event: changeEvent(this.held.content) };
    return this.held.event;
  }
}

/**
 * Makes an event small enough for another process (a NOTIFY payload): a change loses its body,
 * then its entries' summaries are cut shorter and shorter, then entries are dropped from the
 * end. Activity is small already. Undefined: it cannot be made to fit.
 */
export function fitEvent(kind: string, payload: unknown, maxBytes: number): unknown {
  if (kind !== 'change') return undefined;
  const e = payload instanceof LazyChange ? payload.toJSON() : (payload as ChangeEvent);
  const size = (x: unknown): number => Buffer.byteLength(JSON.stringify(x));
  let fitted: ChangeEvent = { ...e, body: null };
  if (size(fitted) <= maxBytes || !e.entries) return size(fitted) <= maxBytes ? fitted : undefined;
  for (const cut of [1000, 300, 100, 0]) {
    const entries = e.entries.map((x) => ({ ...x, summary: x.summary === null ? null : cut === 0 ? null : x.summary.slice(0, cut) }));
    fitted = { ...fitted, entries };
    if (size(fitted) <= maxBytes) return fitted;
  }
  const entries = [...(fitted.entries ?? [])];
  while (entries.length > 0 && size({ ...fitted, entries }) > maxBytes) entries.pop();
  fitted = { ...fitted, entries };
  return size(fitted) <= maxBytes ? fitted : undefined;
}
