// The demo page: follow one feed through client.js and show each new entry as it arrives.
// Entries come from feeds anyone can publish, so they are written as text, and only http(s)
// links are made clickable.
import { follow } from '../client.js';

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
  h.textContent = `New version ${change.version} (${change.contentType || 'unknown type'})`;
  const pre = document.createElement('pre');
  pre.textContent = body.length > 4000 ? `${body.slice(0, 4000)}…` : body;
  li.append(h, pre);
  return li;
}

/** Shows one change: its entries in the feed's own order, above everything shown before. */
function show(items) {
  if (items.length === 0) return;
  list.prepend(...items);
  received += items.length;
  count.textContent = String(received);
  empty.hidden = true;
  while (list.children.length > MAX_ENTRIES) list.lastElementChild.remove();
}

/**
 * EventSource hides why a stream failed; the page asks the hub itself, so the reader learns
 * whether the hub refused the feed (a URL too long, too many streams from this address) or
 * cannot be reached at all, rather than only "reconnecting" for good.
 */
async function explain(following) {
  let why;
  try {
    // HEAD first: the hub answers it as it would the stream, without holding one of the
    // address's streams while the browser reconnects.
    const head = await fetch(following.url, { method: 'HEAD', cache: 'no-store' });
    if (head.ok) return; // the connection had only dropped; the browser is reconnecting
    const res = await fetch(following.url, { cache: 'no-store' });
    if (res.ok) return void (await res.body?.cancel());
    why = `The hub refused to stream this feed (HTTP ${res.status}): ${(await res.text()).trim()}`;
  } catch {
    why = 'The hub cannot be reached; reconnecting…';
  }
  if (following === current && status.dataset.state === 'error') setStatus('error', why);
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
      onError: ({ reconnecting, status: refused, message }) => {
        // A refusal that will not change: follow() has stopped, and passes on the hub's words.
        if (!reconnecting && refused !== undefined) return setStatus('error', `The hub refused to stream this feed (HTTP ${refused}): ${message}`);
        setStatus('error', reconnecting ? 'Connection lost; reconnecting…' : 'Connection closed.');
        if (reconnecting) void explain(current);
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
stopButton.addEventListener('click', stop);

const given = new URL(location.href).searchParams.get('topic');
if (given) {
  input.value = given;
  start(given);
}
