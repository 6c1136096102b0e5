// The operator's dashboard: /stats.json every few seconds, the live activity log from /events
// (Server-Sent Events), and forms that POST to the hub's own endpoints. Everything from the
// hub is written with textContent, never as HTML: topic URLs and details come from strangers.
import { onResize } from './resize.js';

const STATS_EVERY_MS = 3000;
const LOG_MAX_ROWS = 100;

const $ = (sel) => document.querySelector(sel);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null) continue;
    if (k === 'class') node.className = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : String(c ?? ''));
  return node;
}

const TIME_OF_DAY = { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false };
// Made once: toLocaleTimeString() builds a formatter on every call, ~0.2 ms, which was most of
// what each row of the live log cost.
const TIME_ONLY = new Intl.DateTimeFormat([], TIME_OF_DAY);
const DATE_AND_TIME = new Intl.DateTimeFormat([], { month: 'short', day: 'numeric', ...TIME_OF_DAY });

/**
 * A time in the viewer's zone, with its date when that is not today: the activity the hub keeps
 * can be days old on a quiet hub, and a host can be paused past midnight.
 */
function clock(ms) {
  const d = new Date(ms);
  if (d.toDateString() === new Date().toDateString()) return TIME_ONLY.format(d);
  return DATE_AND_TIME.format(d);
}

function since(iso) {
  if (!iso) return '–';
  const secs = Math.round((Date.now() - Date.parse(iso)) / 1000);
  if (!Number.isFinite(secs)) return '–';
  if (secs < 60) return `${Math.max(0, secs)} s ago`;
  if (secs < 3600) return `${Math.round(secs / 60)} min ago`;
  if (secs < 86400) return `${Math.round(secs / 3600)} h ago`;
  return new Date(iso).toLocaleString();
}

function duration(secs) {
  if (secs < 60) return `${secs}s`;
  if (secs < 3600) return `${Math.floor(secs / 60)}m`;
  if (secs < 86400) return `${Math.floor(secs / 3600)}h ${Math.floor((secs % 3600) / 60)}m`;
  return `${Math.floor(secs / 86400)}d ${Math.floor((secs % 86400) / 3600)}h`;
}

/**
 * A topic URL may be MAX_URL_LENGTH (2,048) characters, and anyone may ping one: shown whole, one
 * such URL filled the live log and each table. Three lines of it; the whole in its tooltip, and
 * still in the text for copying.
 */
function clipped(url) {
  return el('span', { class: 'url clip', title: url ?? undefined }, url);
}

/**
 * The tooltip is a mouse's only: a URL cut short takes the keyboard's focus, and is shown whole
 * while it has it (style.css, .clip:focus-visible). Measured once on the page, so that a URL shown
 * whole is no tab stop: all read first, then marked, one layout for them all.
 */
function markClipped(clips) {
  const cut = clips.map((node) => node.scrollHeight > node.clientHeight);
  clips.forEach((node, i) => {
    // Shown whole because it has the focus: it keeps it.
    if (node === document.activeElement) return;
    if (cut[i]) node.tabIndex = 0;
    else node.removeAttribute('tabindex');
  });
}

onResize(() => markClipped([...document.querySelectorAll('.clip')]));

function urlCell(url) {
  return el('td', { class: 'url' }, clipped(url));
}

/**
 * The statuses are live regions (role="status"): a screen reader reads what they say when it
 * changes. The same words again are left alone, or some read them out again at each retry.
 */
function setStatus(node, state, text, said = node) {
  node.dataset.state = state;
  if (said.textContent !== text) said.textContent = text;
}

function fillRows(tbody, rows, columns, emptyText) {
  // A URL in it read whole from the keyboard would lose the focus to the page with its row, and
  // a screen reader would start again from the top: that table waits until the focus leaves it.
  // (A mouse's click focuses without :focus-visible, shows nothing more, and holds nothing.)
  if (tbody.contains(document.activeElement) && document.activeElement.matches(':focus-visible')) return;
  const body = rows.length === 0 ? [el('tr', {}, el('td', { colspan: columns, class: 'empty' }, emptyText))] : rows;
  tbody.replaceChildren(...body);
  markClipped([...tbody.querySelectorAll('.clip')]);
}

function outcome(ok) {
  return el('span', { class: ok ? 'badge ok' : 'badge bad' }, ok ? 'ok' : 'failed');
}

// ---- stats ------------------------------------------------------------------------------

let statsTimer;
let statsSoon;
let statsAsked = 0;
let statsShown = 0;

async function refreshStats() {
  clearTimeout(statsTimer);
  const status = $('#stats-status');
  // Refreshes overlap (the poll, and one after each burst of activity), and a slow answer can
  // come after a newer one: shown, it put the numbers and tables back to older ones.
  const asked = ++statsAsked;
  try {
    const res = await fetch('stats.json', { cache: 'no-store' });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const stats = await res.json();
    if (asked < statsShown) return;
    statsShown = asked;
    render(stats);
    // Only "Stats" is in the live region: its time, read out every few seconds, would drown the rest.
    setStatus(status, 'open', 'Stats', $('#stats-said'));
    $('#stats-at').textContent = `at ${clock(Date.now())}`;
  } catch (e) {
    if (asked < statsShown) return;
    setStatus(status, 'error', `Stats unavailable (${e instanceof Error ? e.message : e}); retrying`, $('#stats-said'));
    $('#stats-at').textContent = '';
  } finally {
    // One timer at a time, however many refreshes overlapped.
    clearTimeout(statsTimer);
    statsTimer = setTimeout(refreshStats, STATS_EVERY_MS);
  }
}

/** Activity usually changes the numbers: refresh shortly after it, at most twice a second. */
function refreshStatsSoon() {
  if (statsSoon) return;
  statsSoon = setTimeout(() => {
    statsSoon = undefined;
    void refreshStats();
  }, 500);
}

function render(s) {
  for (const node of document.querySelectorAll('[data-stat]')) {
    const key = node.dataset.stat;
    node.textContent = key === 'uptime' ? duration(s.uptimeSeconds) : String(s[key] ?? 0);
  }
  for (const node of document.querySelectorAll('[data-protocol]')) {
    node.textContent = String(s.subscriptionsByProtocol?.[node.dataset.protocol] ?? 0);
  }
  fillRows(
    $('#busiest'),
    s.busiestTopics.map((t) =>
      el('tr', {}, urlCell(t.url), el('td', { class: 'num' }, t.subscriptions), el('td', { class: 'num' }, t.version), el('td', {}, since(t.lastUpdate))),
    ),
    4,
    'No topic has subscribers yet.',
  );
  fillRows(
    $('#deliveries'),
    s.recentDeliveries.slice(0, 10).map((a) =>
      el(
        'tr',
        {},
        el('td', {}, el('time', { datetime: new Date(a.at).toISOString() }, clock(a.at))),
        el('td', {}, a.protocol ?? ''),
        urlCell(a.topic),
        el('td', {}, outcome(a.ok), ' ', a.detail ?? ''),
      ),
    ),
    4,
    'Nothing delivered yet.',
  );
  fillRows(
    $('#failures'),
    s.recentFailures.slice(0, 10).map((a) =>
      el(
        'tr',
        {},
        el('td', {}, el('time', { datetime: new Date(a.at).toISOString() }, clock(a.at))),
        el('td', {}, a.kind),
        urlCell(a.topic),
        el('td', {}, a.detail ?? ''),
      ),
    ),
    4,
    'No failures.',
  );
  fillRows(
    $('#paused'),
    s.pausedHosts.map((h) =>
      el('tr', {}, el('td', { class: 'url' }, h.host), el('td', { class: 'num' }, h.failures), el('td', {}, el('time', { datetime: h.until }, clock(Date.parse(h.until))))),
    ),
    3,
    'No host is paused.',
  );
}

// ---- live log ---------------------------------------------------------------------------

function logRow(a) {
  const detail = [a.protocol, a.detail].filter(Boolean).join(' · ');
  return el(
    'li',
    { class: 'fresh', 'data-kind': a.kind, 'data-topic': a.topic, 'data-ok': String(a.ok) },
    el('time', { datetime: new Date(a.at).toISOString() }, clock(a.at)),
    el('span', {}, el('span', { class: 'badge' }, a.kind)),
    el('span', { class: a.ok ? 'mark ok' : 'mark bad', title: a.ok ? 'ok' : 'failed' }, a.ok ? '✓' : '✗'),
    el('span', { class: 'what' }, clipped(a.topic), detail ? el('span', { class: 'detail' }, ` ${detail}`) : ''),
  );
}

// A busy hub adds rows faster than anyone reads them, and a screen reader announced each one
// (role="log" is a polite live region unless told otherwise) until it ran far behind. The log
// is silent unless the viewer asks for it, and can be held still to be read.
/** While paused: the events that came meanwhile (only the newest LOG_MAX_ROWS, as the log keeps), made rows on Resume. */
let held = null;

// A fan-out streams thousands of deliveries a second. Made into a row and put in the log one by
// one (10,000 a second), they kept the page busy 94 % of the time, drawing about one frame a
// second: the page froze, and its buttons with it. Events wait here as they came (their JSON
// unread) and the log is brought up to date once per frame with only the newest LOG_MAX_ROWS:
// the others would leave the log in that same frame. Rows are made only to be shown (not while
// paused). Bounded as the log is, also while the tab is hidden and no frame comes.
/** Events not yet in the log, oldest first: [event type, data]. */
let pending = [];
/** Events dropped from `pending` since the last frame, unseen. */
let skipped = 0;
let frameAsked = false;

function queueForLog(type, data) {
  pending.push([type, data]);
  if (pending.length > 2 * LOG_MAX_ROWS) {
    skipped += pending.length - LOG_MAX_ROWS;
    pending = pending.slice(-LOG_MAX_ROWS);
  }
  if (!frameAsked) {
    frameAsked = true;
    requestAnimationFrame(drawPending);
  }
}

function drawPending() {
  frameAsked = false;
  const events = pending.slice(-LOG_MAX_ROWS);
  const more = skipped + pending.length > events.length;
  pending = [];
  skipped = 0;
  if (!held) return void showInLog(events);
  held.events.push(...events);
  if (more || held.events.length > LOG_MAX_ROWS) {
    held.events = held.events.slice(-LOG_MAX_ROWS);
    held.dropped = true;
  }
  $('#log-pause').textContent = `Resume (${held.events.length}${held.dropped ? '+' : ''} new)`;
}

function rowOf([type, data]) {
  if (type === 'reset') return el('li', { class: 'empty', 'data-kind': 'reset' }, 'Some events were missed while disconnected (the hub may have restarted).');
  try {
    return logRow(JSON.parse(data));
  } catch {
    // Not an activity the page can show.
    return null;
  }
}

/** Puts `events` (oldest first) at the top of the log, newest first. */
function showInLog(events) {
  const rows = events.map(rowOf).filter(Boolean);
  if (rows.length === 0) return;
  const log = $('#log');
  $('#log-empty')?.remove();
  const newestFirst = document.createDocumentFragment();
  for (let i = rows.length - 1; i >= 0; i--) newestFirst.append(rows[i]);
  log.prepend(newestFirst);
  while (log.children.length > LOG_MAX_ROWS) {
    const oldest = log.lastElementChild;
    // A row that left with the keyboard's focus in it (on its clipped URL, a tab stop) left the
    // focus on nothing, and the next Tab started again from the top of the page: the log keeps it.
    if (oldest.contains(document.activeElement)) log.focus({ preventScroll: true });
    oldest.remove();
  }
  markClipped(rows.flatMap((row) => [...row.querySelectorAll('.clip')]));
}

function setUpLogControls() {
  const pause = $('#log-pause');
  pause.addEventListener('click', () => {
    const events = held?.events;
    held = events ? null : { events: [], dropped: false };
    if (events) showInLog(events);
    // Its name says what it will do; it has no aria-pressed as well, which read "Resume, pressed"
    // (a toggle button keeps one name and only its pressed state changes: WAI-ARIA APG).
    pause.textContent = held ? 'Resume (0 new)' : 'Pause';
  });
  const speak = $('#log-speak');
  const applySpeak = () => $('#log').setAttribute('aria-live', speak.checked ? 'polite' : 'off');
  speak.addEventListener('change', applySpeak);
  // Back to this page, the browser ticks the box again as it was left, with no change event, by
  // pageshow: read from the box then, or the log stayed silent behind a ticked box.
  window.addEventListener('pageshow', applySpeak);
}

/** After a refusal, the wait before the live log is opened again: doubled each time, up to a minute. */
const LOG_RETRY_FIRST_MS = 2000;
const LOG_RETRY_MAX_MS = 60_000;
let logRetryMs = LOG_RETRY_FIRST_MS;
let lastLogId = '';

function connectLog() {
  const status = $('#live-status');
  // A fresh EventSource sends no Last-Event-ID: the id goes in the query, so the hub replays
  // what was missed while refused, or says reset.
  const source = new EventSource(lastLogId ? `events?lastEventId=${encodeURIComponent(lastLogId)}` : 'events');
  const seen = (ev) => {
    if (ev.lastEventId) lastLogId = ev.lastEventId;
  };
  // The id the log opens with (and is caught up to after a replay). Without it, a log refused on
  // its reconnect before any activity came opened again with no id, and the activity made while
  // it was refused never showed, not even as a reset.
  source.addEventListener('ready', seen);
  source.addEventListener('open', () => {
    logRetryMs = LOG_RETRY_FIRST_MS;
    setStatus(status, 'open', 'Live log connected');
  });
  source.addEventListener('error', () => {
    if (source.readyState !== EventSource.CLOSED) return void setStatus(status, 'error', 'Live log reconnecting…');
    // The browser reconnects by itself after a dropped connection, never after a refusal (any
    // status but 200: the hub's 429 to an address holding too many streams, its 503 when it holds
    // SSE_MAX_STREAMS, a proxy's 502 while the hub restarts). Left closed, a dashboard open for
    // days stayed dead until reloaded.
    source.close();
    setStatus(status, 'error', `Live log refused; trying again in ${Math.round(logRetryMs / 1000)} s…`);
    setTimeout(connectLog, logRetryMs);
    logRetryMs = Math.min(logRetryMs * 2, LOG_RETRY_MAX_MS);
  });
  source.addEventListener('activity', (ev) => {
    seen(ev);
    queueForLog('activity', ev.data);
    refreshStatsSoon();
  });
  source.addEventListener('reset', (ev) => {
    seen(ev);
    queueForLog('reset', ev.data);
    void refreshStats();
  });
}

// ---- try-it forms -----------------------------------------------------------------------

function xmlText(s) {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

async function submit(form) {
  // While its request is on the way the button is aria-disabled, not disabled: a disabled button
  // loses the keyboard's focus to the page, and a screen reader starts again from the top.
  const button = form.querySelector('button');
  if (button.getAttribute('aria-disabled') === 'true') return;
  const reply = $('#reply');
  const data = new FormData(form);
  const accept = data.get('_accept');
  const via = data.get('_via');
  const fields = new URLSearchParams();
  for (const [k, v] of data) {
    if (!k.startsWith('_') && typeof v === 'string' && v.trim() !== '') fields.append(k, v.trim());
  }
  let path = form.dataset.endpoint;
  let headers = { 'content-type': 'application/x-www-form-urlencoded' };
  let body = fields.toString();
  if (via === 'xmlrpc') {
    path = 'RPC2';
    headers = { 'content-type': 'text/xml' };
    body = `<?xml version="1.0"?>\n<methodCall><methodName>rssCloud.ping</methodName><params><param><value>${xmlText(fields.get('url') ?? '')}</value></param></params></methodCall>`;
  }
  if (typeof accept === 'string' && accept !== '') headers.accept = accept;
  button.setAttribute('aria-disabled', 'true');
  reply.textContent = `POST /${path} …`;
  const started = performance.now();
  try {
    const res = await fetch(path, { method: 'POST', headers, body });
    const text = await res.text();
    const ms = Math.round(performance.now() - started);
    reply.textContent = `POST /${path}\n${body}\n\nHTTP ${res.status} ${res.statusText}  (${ms} ms)\ncontent-type: ${res.headers.get('content-type') ?? ''}\n\n${text}`;
  } catch (e) {
    reply.textContent = `POST /${path} failed: ${e instanceof Error ? e.message : e}`;
  } finally {
    button.removeAttribute('aria-disabled');
  }
}

for (const form of document.querySelectorAll('form.try')) {
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    void submit(form);
  });
}

setUpLogControls();
connectLog();
void refreshStats();
