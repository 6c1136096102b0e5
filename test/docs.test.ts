// The docs page (public/docs.html, served at /docs) shows exchanges "as they go over the wire".
// These tests keep it honest: replies the hub gives to fixed requests appear in it verbatim,
// every Content-Length in it is the length of the body shown, and its signatures verify.
import { createHmac } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { expect } from 'chai';
import { SCHEMA_VERSION } from '../lib/store/pg-schema.js';
import { startTestHub, type TestHub } from './helpers/hub.js';
import { MSG } from './helpers/rsscloud.js';
import { openStream } from './helpers/sse.js';

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
