// The docs page (public/docs.html, served at /docs) shows exchanges "as they go over the wire".
// These tests keep it honest: replies the hub gives to fixed requests appear in it verbatim,
// every Content-Length in it is the length of the body shown, and its signatures verify.
import { createHmac } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { expect } from 'chai';
import { SCHEMA_VERSION } from '../lib/store/pg-schema.js';
import { startTestHub, type TestHub } from './helpers/hub.js';
import { Recorder } from './helpers/recorder.js';
import { MSG, pleaseNotify, subscribeForm } from './helpers/rsscloud.js';
import { openStream } from './helpers/sse.js';

/**
 * The rssCloud form POSTs a document shows the hub sending to a subscriber (a test notification or a
 * notification): request line, headers and body of each block that is one.
 */
function notificationsShown(blocks: string[]): { target: string; body: string }[] {
  const shown: { target: string; body: string }[] = [];
  for (const block of blocks) {
    const split = block.indexOf('\n\n');
    const line = /^POST (\S+) HTTP\/1\.1\n/.exec(block);
    if (split === -1 || !line) continue;
    const head = block.slice(0, split);
    if (!/^content-type: application\/x-www-form-urlencoded$/im.test(head)) continue;
    // Requests to the hub (a pleaseNotify, a ping) are not the hub's.
    if (/^host: localhost:5337$/im.test(head)) continue;
    shown.push({ target: line[1]!, body: block.slice(split + 2).trimEnd() });
  }
  return shown;
}

/**
 * The test notification the hub really sends to a subscriber at `path`, for a feed it serves itself,
 * and that feed's URL: what a document's notifications are compared with.
 */
async function realNotification(hub: TestHub, path: string): Promise<{ target: string; body: string; feedUrl: string }> {
  const feed = await Recorder.start((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/rss+xml' }).end('<rss version="2.0"><channel><title>t</title><item><guid>a</guid></item></channel></rss>');
  });
  const reader = await Recorder.start();
  try {
    const feedUrl = `${feed.url}/feed.xml`;
    expect((await pleaseNotify(hub, subscribeForm(reader, path, feedUrl))).success).to.equal(true);
    const [sent] = await reader.waitFor(1, (r) => r.method === 'POST');
    return { target: sent!.url, body: sent!.body.toString(), feedUrl };
  } finally {
    await reader.close();
    await feed.close();
  }
}

/** Each notification a document shows is the real one, with its own path and feed put in. */
function expectShownAsSent(shown: { target: string; body: string }[], real: { target: string; body: string; feedUrl: string }, where: string): void {
  const realPath = real.target.split('?')[0]!;
  for (const doc of shown) {
    const feedUrl = new URLSearchParams(doc.body).get('url');
    expect(feedUrl, `${where}: ${doc.body}`).to.be.a('string');
    const put = (s: string): string => s.replaceAll(encodeURIComponent(real.feedUrl), encodeURIComponent(feedUrl!));
    expect(`POST ${doc.target}`, where).to.equal(`POST ${doc.target.split('?')[0]!}${put(real.target.slice(realPath.length))}`);
    expect(doc.body, where).to.equal(put(real.body));
  }
}

const decode = (s: string): string =>
  s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&');

describe('The docs page', () => {
  let hub: TestHub;
  let html: string;
  /** The text of every <pre> block, decoded. */
  let blocks: string[];

  before(async () => {
    hub = await startTestHub();
    const res = await fetch(`${hub.url}/docs`);
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.match(/^text\/html/);
    html = await res.text();
    blocks = [...html.matchAll(/<pre[^>]*><code>([\s\S]*?)<\/code><\/pre>/g)].map((m) => decode(m[1] ?? ''));
  });
  after(async () => {
    await hub?.destroy();
  });

  const post = (path: string, body: string, type: string, headers: Record<string, string> = {}): Promise<Response> =>
    fetch(`${hub.url}${path}`, { method: 'POST', headers: { 'content-type': type, ...headers }, body });
  const shown = (text: string): boolean => blocks.some((b) => b.includes(text));

  it('shows the replies the hub really gives, byte for byte', async () => {
    const form = 'application/x-www-form-urlencoded';
    const live: [string, Promise<Response>][] = [
      ['pleaseNotify without parameters', post('/pleaseNotify', 'url1=https%3A%2F%2Fblog.example%2Ffeed.xml', form)],
      ['XML-RPC hello', post('/RPC2', '<?xml version="1.0"?>\n<methodCall><methodName>rssCloud.hello</methodName><params></params></methodCall>', 'text/xml')],
      ['XML-RPC fault', post('/RPC2', '<?xml version="1.0"?>\n<methodCall><methodName>rssCloud.ping</methodName><params></params></methodCall>', 'text/xml')],
      ['WebSub subscribe refused', post('/websub', 'hub.mode=subscribe&hub.topic=https%3A%2F%2Fblog.example%2Ffeed.xml&hub.callback=cb', form)],
      ['fat ping badly signed', post('/websub?hub.mode=publish&hub.topic=https%3A%2F%2Fblog.example%2Ffeed.atom', '<feed/>', 'application/atom+xml', { 'x-hub-signature': 'sha256=00' })],
      ['operator action without a token', post('/admin/hosts/retry', '{}', 'application/json')],
      ['stream without a topic', fetch(`${hub.url}/stream`)],
    ];
    for (const [what, pending] of live) {
      const res = await pending;
      const body = await res.text();
      const wire = `Content-Type: ${res.headers.get('content-type')}\nContent-Length: ${Buffer.byteLength(body)}\n\n${body}`;
      const block = blocks.find((b) => b.includes(wire));
      expect(block, `${what}: ${body}`).to.be.a('string');
      expect(block!.startsWith(`HTTP/1.1 ${res.status} `), `${what}: status ${res.status}`).to.equal(true);
    }
    // The words real clients compare, from the protocol digest rather than from the hub.
    for (const words of [MSG.subscribed, MSG.pinged, MSG.handlerFailed, MSG.noResources, MSG.missing('port, path, protocol')]) {
      expect(shown(`msg="${words}"`), words).to.equal(true);
    }
  });

  it('shows rssCloud notifications as the hub sends them, the url repeated in the query', async () => {
    const shown = notificationsShown(blocks);
    expect(shown.length, 'the test notification and a notification').to.be.at.least(2);
    expectShownAsSent(shown, await realNotification(hub, '/notify'), 'the docs page');
  });

  it('quotes the WebSub refusals in the words the hub answers them', async () => {
    const text = decode(html.replace(/<[^>]+>/g, ''));
    const form = 'application/x-www-form-urlencoded';
    const topic = encodeURIComponent('https://blog.example/feed.xml');
    for (const pending of [
      post('/websub', '{"hub.mode":"subscribe"}', 'application/json'),
      post('/websub', 'hub.mode=subscribe&hub.callback=https%3A%2F%2Freader.example%2Fcb', form),
      post('/websub', `hub.mode=subscribe&hub.topic=${topic}&hub.callback=https%3A%2F%2Freader.example%2Fcb&hub.lease_seconds=soon`, form),
      post('/websub', 'hub.mode=nonsense', form),
    ]) {
      const res = await pending;
      const words = (await res.text()).trim();
      expect(res.status, words).to.be.within(400, 499);
      expect(text.includes(words), words).to.equal(true);
    }
  });

  it('states true Content-Lengths and valid signatures', () => {
    let checked = 0;
    for (const block of blocks) {
      const split = block.indexOf('\n\n');
      if (split === -1) continue;
      const head = block.slice(0, split);
      const body = block.slice(split + 2);
      const length = /^content-length: (\d+)$/im.exec(head);
      if (length) {
        expect(Buffer.byteLength(body), `Content-Length of:\n${head}`).to.equal(Number(length[1]));
        checked++;
      }
      const signature = /^x-hub-signature: (sha256)=([0-9a-f]+)$/im.exec(head);
      if (signature) {
        expect(createHmac('sha256', 's3cret').update(body).digest('hex'), `signature of:\n${head}`).to.equal(signature[2]);
        checked++;
      }
    }
    expect(checked).to.be.greaterThan(30);
  });

  it('shows the stream headers and the reset event the hub really sends', async () => {
    const s = await openStream(`${hub.url}/stream?topic=${encodeURIComponent('https://blog.example/feed.xml')}`, { 'last-event-id': 'gone-1' });
    try {
      const [reset] = await s.waitFor(1, (e) => e.event === 'reset');
      expect(shown(`event: reset\ndata: ${reset!.data}\n`)).to.equal(true);
      expect(s.raw().startsWith('retry: 2000\nid: ')).to.equal(true);
      expect(shown('retry: 2000\nid: ')).to.equal(true);
      const fresh = await openStream(`${hub.url}/stream?topic=${encodeURIComponent('https://blog.example/feed.xml')}`);
      try {
        const [ready] = await fresh.waitFor(1, (e) => e.event === 'ready');
        expect(shown(`event: ready\ndata: ${ready!.data}\n\n`)).to.equal(true);
        // Resumed: what it missed, then ready; as the page shows it.
        hub.hub.emit('activity', { kind: 'ping', topic: 'https://blog.example/feed.xml', ok: true });
        const resumed = await openStream(`${hub.url}/events`, { 'last-event-id': ready!.id! });
        try {
          await resumed.waitFor(1, (e) => e.event === 'ready');
          const order = /^retry: 2000\nid: \S+\nevent: \w+\ndata: \{.*\}\n\nid: \S+\nevent: ready\ndata: \{\}\n/;
          expect(resumed.raw()).to.match(order);
          expect(blocks.some((b) => order.test(b)), 'a resumed stream shown').to.equal(true);
        } finally {
          resumed.close();
        }
      } finally {
        fresh.close();
      }
      for (const name of ['content-type', 'cache-control', 'x-accel-buffering', 'access-control-allow-origin']) {
        const value = s.headers[name];
        expect(blocks.some((b) => new RegExp(`^${name}: ${String(value).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'im').test(b)), name).to.equal(true);
      }
    } finally {
      s.close();
    }
  });

  it('is linked from the dashboard and the demo', async () => {
    for (const page of ['/', '/demo']) {
      expect(await (await fetch(`${hub.url}${page}`)).text()).to.include('href="docs"');
    }
    expect(html).to.include('href="client.js"');
  });
});

// The README's parts that follow the code mechanically, so a new route or migration cannot leave
// them behind unnoticed.
describe('The README', () => {
  let readme: string;
  before(async () => {
    readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
  });

  it('lists in its Endpoints table every path the routes serve', async () => {
    const start = readme.indexOf('## Endpoints');
    const section = readme.slice(start, readme.indexOf('\n### ', start));
    const paths = new Set<string>();
    for (const file of await readdir(new URL('../routes/', import.meta.url))) {
      const source = await readFile(new URL(`../routes/${file}`, import.meta.url), 'utf8');
      for (const m of source.matchAll(/\b(router|admin)\.(?:get|post|use)\(\s*'(\/[^']*)'/g)) paths.add(m[1] === 'admin' ? `/admin${m[2]}` : m[2]!);
      for (const m of source.matchAll(/_PATHS = \[([^\]]*)\]/g)) for (const p of m[1]!.matchAll(/'(\/[^']*)'/g)) paths.add(p[1]!);
    }
    expect(paths.size).to.be.greaterThan(15);
    const listed = (p: string): boolean =>
      new RegExp(`\`(?:(?:GET|POST) )?${p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}[\`?/*]`).test(section);
    expect([...paths].filter((p) => !listed(p)), 'paths missing from the README Endpoints table').to.deep.equal([]);
  });

  it('lists in its Endpoints table only paths the hub answers, with the method it gives', async () => {
    const start = readme.indexOf('## Endpoints');
    const rows = readme.slice(start, readme.indexOf('\n### ', start)).split('\n').filter((l) => l.startsWith('| `'));
    const feed = await Recorder.start((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/rss+xml' }).end('<rss version="2.0"><channel><title>t</title></channel></rss>');
    });
    const hub = await startTestHub({ ADMIN_TOKEN: 'a-token-of-16-chars' });
    try {
      const asked: string[] = [];
      for (const row of rows) {
        const [first = '', what = ''] = row.slice(2).split(' | ');
        const method = /`(GET|POST) /.exec(first)?.[1];
        // The row's own paths, and the aliases and neighbours its text names ("Also `/ping/`").
        const paths = [...`${first} ${what}`.matchAll(/`(?:(?:GET|POST) )?(\/[^`\s]*)`/g)].map((m) => m[1]!);
        for (const p of paths) {
          // A prefix ("under `GET /static/`", `POST /test/*`) names no one path.
          if (p.endsWith('/') && p !== '/' && !/\/(ping|pleaseNotify)\/$/i.test(p)) continue;
          if (p.endsWith('*')) continue;
          const target = p.replaceAll('=URL', `=${encodeURIComponent(`${feed.url}/feed.xml`)}`);
          // Streams stay open: HEAD, which the table says they answer, gives their headers alone.
          const how = method === 'POST' ? 'POST' : /^\/(stream|events)\b/.test(p) ? 'HEAD' : 'GET';
          const res = await fetch(`${hub.url}${target}`, how === 'POST' ? { method: how, headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '' } : { method: how });
          const body = await res.text();
          expect(res.status === 404 && body.trim() === 'Not found.', `${how} ${target}`).to.equal(false);
          asked.push(`${how} ${target}`);
        }
      }
      expect(asked.length).to.be.greaterThan(20);
    } finally {
      await hub.destroy();
      await feed.close();
    }
  });

  it('shows the rssCloud notification as the hub sends it, the url repeated in the query', async () => {
    const blocks = [...readme.matchAll(/```http\n([\s\S]*?)```/g)].map((m) => m[1]!);
    const shown = notificationsShown(blocks);
    expect(shown.length).to.be.at.least(1);
    const hub = await startTestHub();
    try {
      expectShownAsSent(shown, await realNotification(hub, '/notify'), 'the README');
    } finally {
      await hub.destroy();
    }
  });

  it('shows the current schema version in its migrate example', () => {
    const all = Array.from({ length: SCHEMA_VERSION }, (_, i) => i + 1).join(', ');
    expect(readme).to.include(`schema: version 0 → ${SCHEMA_VERSION} (applied ${all})`);
  });

  it('keeps secrets out of the Environment= lines of its systemd unit, which every local user can read', () => {
    const units = [...readme.matchAll(/```ini\n([\s\S]*?)```/g)].map((m) => m[1]!).filter((u) => u.includes('[Service]'));
    expect(units).to.have.length.above(0);
    for (const unit of units) {
      const environment = unit.split('\n').filter((l) => /^Environment=/.test(l));
      expect(environment.length, 'the unit sets its environment').to.be.above(0);
      // A password in a URL (user:password@), or a variable that is a secret whole.
      const secret = /:\/\/[^/@\s:]+:[^@\s]+@|\b(?:ADMIN_TOKEN|PUBLISHER_SECRETS)=/;
      expect(environment.filter((l) => secret.test(l))).to.deep.equal([]);
      // They come from a file instead, which systemd reads as root before dropping to User=.
      expect(unit).to.match(/^EnvironmentFile=\/\S+$/m);
    }
  });
});

/**
 * The anchor GitHub gives a Markdown heading: lower case, punctuation but hyphens and underscores
 * dropped, each space a hyphen; a repeated heading gets -1, -2 … in order.
 */
function headingAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  // Headings inside fenced code blocks are not headings.
  const outsideCode = markdown.replace(/^```[\s\S]*?^```/gm, '');
  for (const m of outsideCode.matchAll(/^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$/gm)) {
    const text = m[1]!.replace(/`/g, '').replace(/\[([^\]]*)\]\([^)]*\)/g, '$1');
    const slug = text.toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/ /g, '-');
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    anchors.add(n === 0 ? slug : `${slug}-${n}`);
  }
  return anchors;
}

describe('The Markdown documents', () => {
  it('link only to files and headings that exist', async () => {
    const root = new URL('../', import.meta.url);
    const files = ['README.md', 'SECURITY.md', ...(await readdir(new URL('docs/', root), { recursive: true })).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
    const broken: string[] = [];
    for (const file of files) {
      const text = (await readFile(new URL(file, root), 'utf8')).replace(/^```[\s\S]*?^```/gm, '');
      for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = m[1]!;
        if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // a URL elsewhere
        const [pathPart = '', anchor] = target.split('#');
        const linked = pathPart === '' ? file : new URL(pathPart, new URL(file, root)).pathname.slice(new URL(root).pathname.length);
        let body: string;
        try {
          body = await readFile(new URL(linked, root), 'utf8');
        } catch (e) {
          // A folder is a fine target: GitHub lists it.
          if ((e as NodeJS.ErrnoException).code !== 'EISDIR') broken.push(`${file}: ${target} (no such file)`);
          continue;
        }
        if (anchor !== undefined && linked.endsWith('.md') && !headingAnchors(body).has(decodeURIComponent(anchor))) {
          broken.push(`${file}: ${target} (no such heading)`);
        }
      }
    }
    expect(broken).to.deep.equal([]);
  });
});
