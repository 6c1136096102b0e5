// Pushbutton's browser client: one ES module, no build step.
//
//   import { follow } from 'https://hub.example/client.js';
//   const feed = follow('https://blog.example/feed.xml', {
//     onEntry: (entry) => console.log(entry.title, entry.link),
//   });
//   // later: feed.close();
//
// follow() opens a Server-Sent Events stream on the hub's /stream and calls you back when a
// topic changes, whichever protocol announced the change (rssCloud ping, WebSub publish, fat
// ping). The browser's EventSource reconnects by itself and sends Last-Event-ID, and the hub
// replays what was missed (a stream that has had no event yet too: the hub gives it an id as it
// opens); when it cannot (the hub restarted, or a change of your topics has left its backlog)
// you get onReset, and should reload whatever you show.

/** The hub this module was served by: client.js sits at the hub's root. */
const HERE = new URL('.', import.meta.url).href;

/**
 * Follows one topic URL or several.
 *
 * @param {string | string[]} topics
 * @param {object} [options]
 * @param {(entry: {id: string, title: string|null, link: string|null, published: string|null, summary: string|null}, change: object) => void} [options.onEntry]
 *   once per new or changed entry of a feed, in document order
 * @param {(body: string, change: object) => void} [options.onBody]
 *   for content that is not a feed: its raw text (small textual bodies only)
 * @param {(change: {topic: string, version: number, contentType: string, entries: object[]|null, body: string|null}, id: string) => void} [options.onChange]
 *   once per change, before onEntry / onBody
 * @param {(info: {reason: string}) => void} [options.onReset]
 *   events may have been missed: reload what you show
 * @param {() => void} [options.onOpen] the stream is (re)connected
 * @param {(info: {reconnecting: boolean}) => void} [options.onError] the stream dropped
 * @param {string} [options.hubUrl] the hub's base URL; defaults to where this module came from
 * @param {string} [options.lastEventId] resume after this event id (one you kept from an earlier page)
 * @returns {{ url: string, readonly lastEventId: string, readonly readyState: number, close(): void }}
 */
export function follow(topics, options = {}) {
  const list = (Array.isArray(topics) ? topics : [topics]).map((t) => String(t).trim()).filter((t) => t !== '');
  if (list.length === 0) throw new TypeError('follow() needs at least one topic URL');
  const { onEntry, onBody, onChange, onReset, onOpen, onError, lastEventId } = options;
  const base = options.hubUrl ? String(options.hubUrl).replace(/\/*$/, '/') : HERE;
  const url = new URL('stream', base);
  for (const t of list) url.searchParams.append('topic', t);
  if (lastEventId) url.searchParams.set('lastEventId', lastEventId);

  const source = new EventSource(url.href);
  let last = lastEventId ?? '';

  source.addEventListener('change', (ev) => {
    if (ev.lastEventId) last = ev.lastEventId;
    let change;
    try {
      change = JSON.parse(ev.data);
    } catch {
      return;
    }
    onChange?.(change, ev.lastEventId);
    if (Array.isArray(change.entries)) {
      for (const entry of change.entries) onEntry?.(entry, change);
    } else if (typeof change.body === 'string') {
      onBody?.(change.body, change);
    }
  });
  source.addEventListener('reset', (ev) => {
    if (ev.lastEventId) last = ev.lastEventId;
    let info = { reason: 'cannot resume' };
    try {
      info = JSON.parse(ev.data);
    } catch {
      // keep the default
    }
    onReset?.(info);
  });
  source.addEventListener('open', () => onOpen?.());
  source.addEventListener('error', () => onError?.({ reconnecting: source.readyState !== EventSource.CLOSED }));

  return {
    url: url.href,
    get lastEventId() {
      return last;
    },
    get readyState() {
      return source.readyState;
    },
    close() {
      source.close();
    },
  };
}
