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
// you get onReset, and should reload whatever you show. When the hub refuses the stream (it
// answers 429 to an address that holds too many, as many tabs behind one NAT can, and 503 when
// it holds as many as it can in all) or the browser gives up on it, follow() opens it again
// later, each time later than the last, resuming from the last event id (the id the stream
// opened with, when no change had come yet); with none to resume from (the stream was refused
// the first time it was asked for), you get onReset once it is open again. A refusal that will not
// change (a 400 for a topic URL longer than the hub takes, any 4xx but 429) ends it:
// onError({ reconnecting: false, status, message }) with the hub's own words. EventSource does
// not say why a stream failed, so follow() asks the hub once per failure, and onError passes on
// what it learned: the refusal's status and words while it opens the stream again too
// ({ reconnecting: true, status, message }), or { reconnecting: true, unreachable: true } when
// the hub could not be asked at all. A page has no need to ask the hub again itself.

/** The hub this module was served by: client.js sits at the hub's root. */
const HERE = new URL('.', import.meta.url).href;

/** Most characters of the hub's refusal passed on (its words are a line; a proxy's page may be long). */
const MESSAGE_MAX = 500;

/**
 * Why a stream failed, which EventSource does not tell: asked again with HEAD (answered as the
 * stream would be, without holding one of the address's streams), and when that is refused, once
 * more with GET for the hub's words. One question per failure, whose answer onError passes on
 * whole: the page need not ask again (two questions per refusal were two requests more against
 * a hub that had just said it holds too many). `final`: a refusal that will not change (a 4xx but
 * 429). `unreachable`: no answer the page may read (the hub is down or restarting, the network
 * is gone, or an answer came without the hub's CORS headers); not final, the hub is asked again
 * later.
 */
async function refusal(href) {
  let head;
  try {
    head = await fetch(href, { method: 'HEAD', cache: 'no-store' });
    if (head.ok) return { final: false };
    const res = await fetch(href, { cache: 'no-store' });
    // Open now after all (the hub changed its mind): not final, and not held open by this.
    if (res.ok) {
      await res.body?.cancel();
      return { final: false };
    }
    const text = (await res.text()).trim();
    return { final: isFinal(res.status), status: res.status, message: text.length > MESSAGE_MAX ? `${text.slice(0, MESSAGE_MAX)}…` : text };
  } catch {
    // The HEAD was answered, its GET not (the hub went away in between): its status is still the hub's.
    if (head && !head.ok) return { final: isFinal(head.status), status: head.status };
    return { final: false, unreachable: true };
  }
}

/** A refusal that asking again will not change: any 4xx but 429 (a 5xx or a 429 passes). */
function isFinal(status) {
  return status >= 400 && status < 500 && status !== 429;
}

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
 * @param {(info: {reconnecting: boolean, status?: number, message?: string, unreachable?: boolean}) => void} [options.onError]
 *   the stream dropped or was refused, once per failure, after follow() has asked the hub why
 *   (so it is the page's one question: no need to ask the hub again). `status` and `message`:
 *   the hub refused the stream, with its words (the first 500 characters); with `reconnecting:
 *   true` (429, 5xx) it is opened again later, with `reconnecting: false` (a 4xx but 429) the
 *   refusal will not change and follow() stops. `unreachable: true`: the hub could not be asked
 *   at all (down, restarting, no network); it is tried again. `{ reconnecting: true }` alone: the
 *   connection had only dropped, and the hub is there to reconnect to. A failure followed by the
 *   stream opening again before the hub answered is not reported
 * @param {string} [options.hubUrl] the hub's base URL; defaults to where this module came from
 * @param {string} [options.lastEventId] resume after this event id (one you kept from an earlier page)
 * @param {number} [options.retryMs] how long to wait before opening the stream again when it was
 *   refused or given up on (default 30 s; doubled on each refusal in a row, up to 5 minutes)
 * @returns {{ url: string, readonly lastEventId: string, readonly readyState: number, close(): void }}
 */
export function follow(topics, options = {}) {
  const list = (Array.isArray(topics) ? topics : [topics]).map((t) => String(t).trim()).filter((t) => t !== '');
  if (list.length === 0) throw new TypeError('follow() needs at least one topic URL');
  // The hub answers 400 to such a topic, which EventSource hides from the page: follow() would
  // only report onError and try again, every few minutes, for as long as the page is open.
  for (const t of list) {
    let u;
    try {
      u = new URL(t);
    } catch {
      throw new TypeError(`follow() needs absolute topic URLs, as the publisher names them: ${t}`);
    }
    // The URL parser drops a tab or line break inside the text; the hub refuses the topic for it.
    if ((u.protocol !== 'http:' && u.protocol !== 'https:') || t.includes('#') || u.username !== '' || u.password !== '' || /[\u0000-\u001f\u007f]/.test(t)) {
      throw new TypeError(`follow() needs http(s) topic URLs without a fragment, credentials or control characters: ${JSON.stringify(t)}`);
    }
  }
  const { onEntry, onBody, onChange, onReset, onOpen, onError, lastEventId } = options;
  const retryMs = Math.max(0, Number(options.retryMs ?? 30_000));
  const base = options.hubUrl ? String(options.hubUrl).replace(/\/*$/, '/') : HERE;
  const url = new URL('stream', base);
  for (const t of list) url.searchParams.append('topic', t);
  let last = lastEventId ?? '';
  let source;
  let closed = false;
  let wait = retryMs;
  let timer;
  /** Times a stream of this follow() opened: a failure the hub is still being asked about may have passed. */
  let opens = 0;

  const onChangeEvent = (ev) => {
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
  };
  const onResetEvent = (ev) => {
    if (ev.lastEventId) last = ev.lastEventId;
    let info = { reason: 'cannot resume' };
    try {
      info = JSON.parse(ev.data);
    } catch {
      // keep the default
    }
    onReset?.(info);
  };
  const open = (again) => {
    const at = new URL(url);
    if (last) at.searchParams.set('lastEventId', last);
    // Opened again with no id (it was refused the first time), the hub cannot tell what was
    // missed while refused, and says nothing.
    let blind = again && !last;
    const es = new EventSource(at.href);
    es.addEventListener('change', onChangeEvent);
    es.addEventListener('reset', onResetEvent);
    // The id the stream opens with (and is caught up to after a replay). Kept only by the browser
    // before, a stream refused on its reconnect before any change came opened again with no id:
    // the page was told to reload, though the hub could have sent what it missed.
    es.addEventListener('ready', (ev) => {
      if (ev.lastEventId) last = ev.lastEventId;
    });
    es.addEventListener('open', () => {
      opens++;
      wait = retryMs;
      onOpen?.();
      if (blind) {
        blind = false;
        onReset?.({ reason: 'opened again with no event id to resume from' });
      }
    });
    es.addEventListener('error', () => {
      if (closed) return void onError?.({ reconnecting: false });
      // EventSource reconnects by itself after a dropped connection, but not after a refusal
      // (any status but 200): then this does, later each time, unless the refusal is final.
      const refusedNow = es.readyState === EventSource.CLOSED;
      const opensBefore = opens;
      void refusal(at.href).then((refused) => {
        if (closed || source !== es) return;
        const { final, ...why } = refused;
        if (!refusedNow) {
          // The browser is reconnecting, and its own answer decides what comes next. Open again
          // before the hub answered this, the failure has passed: said now, "reconnecting" would
          // stand over a live stream.
          if (opens === opensBefore) onError?.({ reconnecting: true, ...why });
          return;
        }
        if (final) {
          closed = true;
          return void onError?.({ reconnecting: false, ...why });
        }
        onError?.({ reconnecting: true, ...why });
        clearTimeout(timer);
        timer = setTimeout(() => {
          if (!closed) source = open(true);
        }, wait);
        wait = Math.min(wait * 2, 300_000);
      });
    });
    return es;
  };
  source = open(false);

  return {
    url: url.href,
    get lastEventId() {
      return last;
    },
    get readyState() {
      return source.readyState;
    },
    close() {
      closed = true;
      clearTimeout(timer);
      source.close();
    },
  };
}
