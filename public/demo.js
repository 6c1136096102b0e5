// The demo page: follow one feed through client.js and show each new entry as it arrives.
// Entries come from feeds anyone can publish, so they are written as text, and only http(s)
// links are made clickable.
import { follow } from '../client.js';
import { onResize } from './resize.js';

const form = document.querySelector('#follow-form');
const input = document.querySelector('#topic');
const stopButton = document.querySelector('#stop');
const status = document.querySelector('#status');
const list = document.querySelector('#entries');
const empty = document.querySelector('#entries-empty');
const count = document.querySelector('#count');
const MAX_ENTRIES = 200;

let current;
let received = 0;
/** Bodies shown so far, for their headings' ids. */
let bodies = 0;

document.querySelector('#snippet').textContent = document
  .querySelector('#snippet')
  .textContent.replace('https://this-hub/client.js', new URL('client.js', location.href).href);

function setStatus(state, text) {
  status.dataset.state = state;
  status.textContent = text;
}

function safeHref(link) {
  try {
    const u = new URL(link);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : null;
  } catch {
    return null;
  }
}

function when(published) {
  if (!published) return null;
  const t = Date.parse(published);
  return Number.isFinite(t) ? { iso: new Date(t).toISOString(), text: new Date(t).toLocaleString() } : { iso: null, text: published };
}

function entryItem(entry, change) {
  const li = document.createElement('li');
  li.className = 'entry fresh';
  li.dataset.id = entry.id;
  li.dataset.version = String(change.version);
  const h = document.createElement('h3');
  const href = entry.link ? safeHref(entry.link) : null;
  const title = entry.title || entry.link || entry.id || '(untitled)';
  if (href) {
    const a = document.createElement('a');
    a.href = href;
    a.rel = 'noopener noreferrer';
    a.target = '_blank';
    a.textContent = title;
    h.append(a);
  } else {
    h.textContent = title;
  }
  li.append(h);
  const meta = document.createElement('p');
  meta.className = 'meta';
  const published = when(entry.published);
  if (published) {
    const time = document.createElement('time');
    if (published.iso) time.dateTime = published.iso;
    time.textContent = published.text;
    meta.append('Published ', time, ' · ');
  }
  meta.append(`received ${new Date().toLocaleTimeString()}`);
  li.append(meta);
  if (entry.summary) {
    const p = document.createElement('p');
    p.className = 'summary';
    p.textContent = entry.summary;
    li.append(p);
  }
  return li;
}

function bodyItem(body, change) {
  const li = document.createElement('li');
  li.className = 'entry fresh';
  li.dataset.version = String(change.version);
  const h = document.createElement('h3');
  h.id = `body-${++bodies}`;
  h.textContent = `New version ${change.version} (${change.contentType || 'unknown type'})`;
  const pre = document.createElement('pre');
  pre.dataset.labelledby = h.id;
  pre.textContent = body.length > 4000 ? `${body.slice(0, 4000)}…` : body;
  li.append(h, pre);
  return li;
}

/**
 * A body taller than its box (style.css: 16rem) scrolls, and only Chromium lets the keyboard into
 * a scrolling box by itself: in Safari it could not be scrolled without a mouse. Such a body takes
 * the focus and is a region named by its heading; one shown whole is left out of the tab order.
 * All read first, then marked: one layout for them all.
 */
function markScrolling(pres) {
  const scrolls = pres.map((pre) => pre.scrollHeight > pre.clientHeight || pre.scrollWidth > pre.clientWidth);
  pres.forEach((pre, i) => {
    if (pre === document.activeElement) return;
    if (scrolls[i]) {
      pre.tabIndex = 0;
      pre.setAttribute('role', 'region');
      pre.setAttribute('aria-labelledby', pre.dataset.labelledby);
    } else {
      for (const name of ['tabindex', 'role', 'aria-labelledby']) pre.removeAttribute(name);
    }
  });
}

onResize(() => markScrolling([...list.querySelectorAll('.entry pre')]));

/** Shows one change: its entries in the feed's own order, above everything shown before. */
function show(items) {
  if (items.length === 0) return;
  list.prepend(...items);
  markScrolling(items.flatMap((li) => [...li.querySelectorAll('pre')]));
  received += items.length;
  count.textContent = String(received);
  // The status is a polite live region: without this, a screen reader never heard entries come.
  if (current) setStatus('open', `Live: ${received} new ${received === 1 ? 'entry' : 'entries'} so far, newest first.`);
  empty.hidden = true;
  while (list.children.length > MAX_ENTRIES) list.lastElementChild.remove();
}

function start(topic) {
  stop();
  received = 0;
  count.textContent = '0';
  list.replaceChildren();
  empty.hidden = false;
  let batch = [];
  try {
    current = follow(topic, {
      onOpen: () => setStatus('open', `Live: waiting for ${topic} to change.`),
      // EventSource hides why a stream failed; follow() has asked the hub already, so the reader
      // learns whether the hub refused the feed (a URL too long, too many streams from this
      // address) or cannot be reached at all, rather than only "reconnecting" for good. Asked
      // again here, every refusal cost the hub twice the questions.
      onError: ({ reconnecting, status: refused, message, unreachable }) => {
        if (refused !== undefined) return setStatus('error', `The hub refused to stream this feed (HTTP ${refused})${message ? `: ${message}` : '.'}`);
        if (unreachable) return setStatus('error', 'The hub cannot be reached; reconnecting…');
        setStatus('error', reconnecting ? 'Connection lost; reconnecting…' : 'Connection closed.');
      },
      onReset: () => setStatus('open', 'Reconnected, but some changes were missed while away; new ones will show here.'),
      onChange: () => {
        const items = [];
        batch = items;
        queueMicrotask(() => show(items));
      },
      onEntry: (entry, change) => batch.push(entryItem(entry, change)),
      onBody: (body, change) => batch.push(bodyItem(body, change)),
    });
  } catch (e) {
    // A topic the hub would refuse (a fragment, credentials, not http(s)): follow() says why at
    // once. Uncaught, the page said "Connecting…" for good and nothing else.
    setStatus('error', `Cannot follow this URL: ${e instanceof Error ? e.message : e}`);
    return;
  }
  setStatus('connecting', `Connecting to the hub for ${topic}…`);
  stopButton.disabled = false;
  const url = new URL(location.href);
  url.searchParams.set('topic', topic);
  history.replaceState(null, '', url);
}

function stop() {
  if (!current) return;
  current.close();
  current = undefined;
  stopButton.disabled = true;
  setStatus('idle', 'Stopped.');
}

form.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const topic = input.value.trim();
  if (topic) start(topic);
});
stopButton.addEventListener('click', () => {
  // Stop is disabled once stopped, and a disabled button loses the focus to the page: a keyboard
  // or screen reader user was sent back to its top. Follow, next to it, takes the focus.
  if (document.activeElement === stopButton) document.querySelector('#follow').focus();
  stop();
});

const given = new URL(location.href).searchParams.get('topic');
if (given) {
  input.value = given;
  start(given);
}
