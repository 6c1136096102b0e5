// weblogUpdates over XML-RPC, end to end: the independent `xmlrpc` package calls /RPC2 exactly as
// WordPress does (weblog_ping in wp-includes/comment.php: extendedPing(blog name, home URL with
// its trailing slash, feed URL), three strings, then ping(blog name, home URL) when that
// fails), and as other tools do (Google's four-string extendedPing, weblogs.com's ping with a
// category, rssUpdate). A ping that names only a site has its feeds discovered from the home
// page, remembered, and read like any rssCloud ping or WebSub publish, so their subscribers on
// every protocol hear of the post. REST pings that name a site page get the same discovery.
import { readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { createLogger } from '../lib/log.js';
import type { Site } from '../lib/model.js';
import { LowdbStore } from '../lib/store/lowdb-store.js';
import { Recorder, sleep } from './helpers/recorder.js';
import { startTestHub, tempDataDir, type TestHub } from './helpers/hub.js';
import { spawnHub } from './helpers/child-hub.js';
import { embeddedOnly } from './helpers/store-under-test.js';
import { MSG, notificationsAt, notifyBody, ping, pleaseNotify, postForm, readReply, rpcCall, subscribeForm, subscriberOk, testApi, type RpcResult } from './helpers/rsscloud.js';
import { Subscriber, TopicServer, parseLinks, publish, settled, subscribe } from './helpers/websub.js';

const THANKS = { flerror: false, message: 'Thanks for the ping.' };
const RSS = 'application/rss+xml; charset=UTF-8';
const ATOM = 'application/atom+xml; charset=UTF-8';
const JSON_FEED = 'application/feed+json';
const HTML = 'text/html; charset=UTF-8';

// ---- documents, written the way blogs write them ------------------------------------------------

function rssFeed(home: string, posts: string[]): string {
  const items = posts
    .map((p) => `<item><title>${p}</title><link>${home}${p}/</link><guid isPermaLink="false">${home}?p=${p}</guid><description>All about ${p}.</description></item>`)
    .join('\n');
  return `<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel><title>A blog</title><link>${home}</link><description>Posts</description>\n${items}\n</channel></rss>\n`;
}

function atomFeed(home: string, posts: string[]): string {
  const entries = posts
    .map((p) => `<entry><title>${p}</title><id>${home}?p=${p}</id><updated>2026-01-01T00:00:00Z</updated><link href="${home}${p}/"/></entry>`)
    .join('\n');
  return `<?xml version="1.0" encoding="UTF-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom"><title>A blog</title><id>${home}</id><updated>2026-01-01T00:00:00Z</updated>\n${entries}\n</feed>\n`;
}

function jsonFeed(home: string, posts: string[]): string {
  return JSON.stringify({
    version: 'https://jsonfeed.org/version/1.1',
    title: 'A blog',
    home_page_url: home,
    items: posts.map((p) => ({ id: `${home}?p=${p}`, url: `${home}${p}/`, title: p, content_text: `All about ${p}.` })),
  });
}

/** A home page with the <link> tags a theme prints in <head>. */
function homePage(head: string): string {
  return `<!DOCTYPE html>\n<html lang="en-US">\n<head>\n<meta charset="UTF-8">\n<title>A blog</title>\n${head}\n</head>\n<body><h1>A blog</h1><p>Hello, world.</p></body>\n</html>\n`;
}

/** WordPress's home page head: the posts feed, the comments feed and the REST API link. */
function wordpressHead(base: string): string {
  return [
    `<link rel="alternate" type="application/rss+xml" title="A blog &raquo; Feed" href="${base}feed/" />`,
    `<link rel="alternate" type="application/rss+xml" title="A blog &raquo; Comments Feed" href="${base}comments/feed/" />`,
    `<link rel="https://api.w.org/" href="/wp-json/" />`,
  ].join('\n');
}

// ---- a raw SSE reader over fetch -----------------------------------------------------------------

interface SseEvent {
  event: string;
  data: string;
}

/** Reads GET /stream?topic=… as raw text from a fetch body and splits it into events. */
class RawSse {
  private text = '';
  private wake: () => void = () => {};
  private constructor(private readonly abort: AbortController) {}

  static async open(hubUrl: string, topic: string): Promise<RawSse> {
    const abort = new AbortController();
    const sse = new RawSse(abort);
    const res = await fetch(`${hubUrl}/stream?topic=${encodeURIComponent(topic)}`, { headers: { accept: 'text/event-stream' }, signal: abort.signal });
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.match(/^text\/event-stream/);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    void (async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        sse.text += decoder.decode(value, { stream: true });
        sse.wake();
      }
    })().catch(() => {});
    // The hub writes "retry:" when it attaches the stream: from then on it hears every change.
    await sse.until(() => sse.text.includes('retry:'));
    return sse;
  }

  events(): SseEvent[] {
    const out: SseEvent[] = [];
    for (const block of this.text.split('\n\n')) {
      let event = 'message';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) event = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
      }
      if (data.length > 0) out.push({ event, data: data.join('\n') });
    }
    return out;
  }

  async waitFor(event: string, timeoutMs = 8000): Promise<SseEvent> {
    await this.until(() => this.events().some((e) => e.event === event), timeoutMs);
    return this.events().find((e) => e.event === event)!;
  }

  close(): void {
    this.abort.abort();
  }

  private async until(done: () => boolean, timeoutMs = 8000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`SSE: timed out; received so far:\n${this.text}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 200));
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }
}

// ---- the suite -------------------------------------------------------------------------------------

describe('weblogUpdates: update pings from blogging tools', function () {
  let hub: TestHub;
  let web: TopicServer;
  let seq = 0;
  const extra: { destroy?(): Promise<void>; close?(): Promise<void> }[] = [];

  before(async () => {
    hub = await startTestHub();
    web = await TopicServer.start();
  });
  after(async () => {
    await hub?.destroy();
    await web?.close();
  });
  beforeEach(async () => {
    await testApi(hub, 'clear');
    web.rec.reset();
  });
  afterEach(async () => {
    for (const x of extra.splice(0)) await (x.destroy ?? x.close)!.call(x);
  });

  const call = (method: string, params: unknown[], on: { url: string } = hub): Promise<RpcResult> => rpcCall(on.url, method, params);
  const answer = (value: unknown): RpcResult => ({ ok: true, value });

  interface Blog {
    /** The home URL, with WordPress's trailing slash. */
    home: string;
    homePath: string;
    feed: string;
    feedPath: string;
    /** Publishes a post: the feed gains an item. */
    post(title: string): void;
  }

  /** A WordPress-like blog on the test web server: a home page whose head links to /feed/. */
  function blog(head?: (base: string) => string): Blog {
    const homePath = `/blog-${++seq}/`;
    const home = web.url(homePath);
    const posts: string[] = ['hello-world'];
    const feedPath = `${homePath}feed/`;
    web.set(homePath, { body: homePage((head ?? wordpressHead)(homePath)), contentType: HTML });
    const publish = (): void => void web.set(feedPath, { body: rssFeed(home, [...posts].reverse()), contentType: RSS });
    publish();
    return {
      home,
      homePath,
      feed: web.url(feedPath),
      feedPath,
      post: (title) => {
        posts.push(title);
        publish();
      },
    };
  }

  const reads = (path: string): number => web.fetches(path).length;

  /** An rssCloud reader subscribed to `feed` (REST, http-post to /notify), its handler test forgotten. */
  async function cloudReader(feed: string): Promise<Recorder> {
    const cloud = await Recorder.start(subscriberOk);
    extra.push(cloud);
    expect((await pleaseNotify(hub, subscribeForm(cloud, '/notify', feed))).success).to.equal(true);
    cloud.reset();
    return cloud;
  }

  describe('what WordPress sends', () => {
    it('extendedPing(blog name, home URL, feed URL): three strings, the feed read directly, the home page never', async () => {
      const b = blog();
      expect(await call('weblogUpdates.extendedPing', ['A blog', b.home, b.feed])).to.deep.equal(answer(THANKS));
      expect(reads(b.feedPath)).to.equal(1);
      expect(reads(b.homePath)).to.equal(0);
    });

    it('a feed slower to read than WordPress waits (3 s) is answered with thanks at 2.5 s, read once, and its change still reaches subscribers', async () => {
      const b = blog();
      const cloud = await cloudReader(b.feed);
      web.rec.reset();
      // The blog busy right after publishing: its feed takes 3.2 s (within REQUEST_TIMEOUT_MS, 4 s).
      web.set(b.feedPath, { body: rssFeed(b.home, ['slow-news', 'hello-world']), contentType: RSS, delayMs: 3200 });
      const asked = Date.now();
      // Unanswered after 3 s, WordPress takes its extendedPing for failed and pings again.
      expect(await call('weblogUpdates.extendedPing', ['A blog', b.home, b.feed])).to.deep.equal(answer(THANKS));
      expect(Date.now() - asked, "answered within WordPress's 3 s").to.be.below(3000);
      expect(cloud.requests, 'answered before the read ended').to.have.length(0);
      const [notified] = await cloud.waitFor(1, (r) => r.method === 'POST' && r.path === '/notify');
      expect(notified!.body.toString()).to.equal(notifyBody(b.feed));
      expect(reads(b.feedPath)).to.equal(1);
    });

    it('a ping thanked before its read ended is read after the hub is SIGKILLed mid-read and restarted (polling off): its subscribers hear of the post', async function () {
      this.timeout(60_000);
      const b = blog();
      const dir = await tempDataDir();
      const env = { POLL_ENABLED: 'false' };
      const first = await spawnHub(dir, env);
      extra.push({ close: async () => void (await first.stop('SIGKILL')) });
      const cloud = await Recorder.start(subscriberOk);
      extra.push(cloud);
      expect((await pleaseNotify(first, subscribeForm(cloud, '/notify', b.feed))).success).to.equal(true);
      cloud.reset();
      // The feed's next read is held until the hub has been killed.
      const serve = web.rec.handler;
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      web.rec.handler = async (req, res) => {
        if (req.path === b.feedPath) await held;
        await serve(req, res);
      };
      try {
        b.post('news');
        expect(await call('weblogUpdates.extendedPing', ['A blog', b.home, b.feed], first)).to.deep.equal(answer(THANKS));
        expect(reads(b.feedPath), 'read under way').to.equal(2);
        expect((await first.stop('SIGKILL')).signal).to.equal('SIGKILL');
      } finally {
        release();
        web.rec.handler = serve;
      }
      expect(cloud.requests).to.have.length(0);
      const second = await spawnHub(dir, env);
      extra.push({ close: async () => void (await second.stop('SIGKILL')) });
      extra.push({ close: () => rm(dir, { recursive: true, force: true }) });
      const [notified] = await cloud.waitFor(1, (r) => r.method === 'POST' && r.path === '/notify');
      expect(notified!.body.toString()).to.equal(notifyBody(b.feed));
    });

    it('a ping thanked while its read waits for its turn, the hub then stopped gracefully (the read dropped), is read at the next start', async function () {
      this.timeout(30_000);
      const b = blog();
      // Another feed of the same host, its read held: with FETCH_PER_HOST=1 the ping's read waits for its turn.
      const blockerPath = `/blocker-${++seq}/feed/`;
      web.set(blockerPath, { body: rssFeed(b.home, ['other']), contentType: RSS });
      const dir = await tempDataDir();
      const env = { POLL_ENABLED: 'false', FETCH_PER_HOST: '1' };
      const first = await startTestHub(env, dir);
      let firstOpen = true;
      const cloud = await Recorder.start(subscriberOk);
      extra.push(cloud);
      const serve = web.rec.handler;
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      try {
        expect((await pleaseNotify(first, subscribeForm(cloud, '/notify', b.feed))).success).to.equal(true);
        cloud.reset();
        web.rec.handler = async (req, res) => {
          if (req.path === blockerPath) await held;
          await serve(req, res);
        };
        expect((await publish(first, web.url(blockerPath))).status).to.equal(204);
        await web.rec.waitFor(1, (r) => r.path === blockerPath);
        b.post('news');
        expect(await call('weblogUpdates.extendedPing', ['A blog', b.home, b.feed], first)).to.deep.equal(answer(THANKS));
        expect(reads(b.feedPath), 'its read still waiting for its turn').to.equal(1);
        // SIGTERM (a deploy): the read not started is dropped. The ping's work then ended as if
        // the feed were unreadable, its record was deleted, and the post was never read.
        // close() drops the reads waiting for a turn at once (HttpClient.hurry), before the held one ends.
        const closing = first.close();
        release();
        await closing;
        firstOpen = false;
      } finally {
        release();
        web.rec.handler = serve;
        if (firstOpen) await first.close();
      }
      expect(cloud.requests).to.have.length(0);
      const second = await startTestHub(env, dir);
      extra.push({ destroy: () => second.destroy() });
      const [notified] = await cloud.waitFor(1, (r) => r.method === 'POST' && r.path === '/notify');
      expect(notified!.body.toString()).to.equal(notifyBody(b.feed));
    });

    it('a feed that fails only after the thanks (3.2 s, then 500) is logged as unreadable, never thrown or taken for a failure of the hub', async () => {
      // The pinger has its answer; what the read learns later can only go to the log.
      const log: Record<string, unknown>[] = [];
      const own = await startTestHub({}, undefined, { log: createLogger('info', (line) => void log.push(JSON.parse(line) as Record<string, unknown>)) });
      extra.push(own);
      const feedServer = await Recorder.start(async (_req, res) => {
        await sleep(3200);
        res.writeHead(500, { 'content-type': 'text/plain' }).end('busy');
      });
      extra.push(feedServer);
      const feed = `${feedServer.url}/feed/`;
      const asked = Date.now();
      expect(await call('weblogUpdates.extendedPing', ['A blog', `${feedServer.url}/`, feed], own)).to.deep.equal(answer(THANKS));
      expect(Date.now() - asked, "answered within WordPress's 3 s").to.be.below(3000);
      expect(feedServer.requests, 'read under way').to.have.length(1);
      await settled(own);
      const said = log.filter((l) => l['topic'] === feed || l['site'] === feed);
      expect(said.map((l) => l['msg']), JSON.stringify(said)).to.include('ping: topic unreadable');
      expect(log.filter((l) => l['level'] === 'error'), 'errors logged').to.deep.equal([]);
    });

    it('the fallback ping(blog name, home URL): the feed is discovered from <link rel="alternate"> on the home page', async () => {
      const b = blog((base) => `<link rel="alternate" type="application/rss+xml" title="A blog &raquo; Feed" href="${base}feed/">`);
      expect(await call('weblogUpdates.ping', ['A blog', b.home])).to.deep.equal(answer(THANKS));
      expect(reads(b.homePath)).to.equal(1);
      expect(reads(b.feedPath)).to.equal(1);
      const site = await hub.store.getSite(b.home);
      expect(site?.feeds).to.deep.equal([b.feed]);
    });

    it('a relative href="/feed/" is resolved against the page, and WordPress\'s REST API link is not a feed', async () => {
      const b = blog(() => `<link rel="alternate" type="application/rss+xml" href="feed/"><link rel="alternate" type="application/json" href="/wp-json/wp/v2/pages/2">`);
      expect(await call('weblogUpdates.ping', ['A blog', b.home])).to.deep.equal(answer(THANKS));
      expect(reads(b.feedPath)).to.equal(1);
      expect(web.fetches('/wp-json/wp/v2/pages/2')).to.have.length(0);
    });
  });

  describe('what other tools send', () => {
    it("Google's extendedPing(name, site, changed page, feed URL[, tags]): the fourth is the feed", async () => {
      const b = blog();
      expect(await call('weblogUpdates.extendedPing', ['A blog', b.home, `${b.home}hello-world/`, b.feed])).to.deep.equal(answer(THANKS));
      expect(await call('weblogUpdates.extendedPing', ['A blog', b.home, `${b.home}hello-world/`, b.feed, 'news|tech'])).to.deep.equal(answer(THANKS));
      expect(reads(b.feedPath)).to.equal(2);
      expect(reads(b.homePath)).to.equal(0);
    });

    it('extendedPing with an empty feed URL discovers the feed from the site', async () => {
      const b = blog();
      expect(await call('weblogUpdates.extendedPing', ['A blog', b.home, b.home, ''])).to.deep.equal(answer(THANKS));
      expect(reads(b.homePath)).to.equal(1);
      expect(reads(b.feedPath)).to.equal(1);
    });

    it('ping(name, site, changes URL, feed URL) reads that feed; a category there is not a URL and the feed is discovered', async () => {
      const b = blog();
      expect(await call('weblogUpdates.ping', ['A blog', b.home, b.home, b.feed])).to.deep.equal(answer(THANKS));
      expect(reads(b.homePath)).to.equal(0);
      expect(reads(b.feedPath)).to.equal(1);
      expect(await call('weblogUpdates.ping', ['A blog', b.home, b.home, 'Technology'])).to.deep.equal(answer(THANKS));
      expect(reads(b.homePath)).to.equal(1);
      expect(reads(b.feedPath)).to.equal(2);
    });

    it('rssUpdate(name, feed URL) reads the feed', async () => {
      const b = blog();
      expect(await call('weblogUpdates.rssUpdate', ['A blog', b.feed])).to.deep.equal(answer(THANKS));
      expect(reads(b.feedPath)).to.equal(1);
      expect(reads(b.homePath)).to.equal(0);
    });
  });

  describe('a site with several feeds', () => {
    it('RSS, Atom and JSON Feed alternates are each read once; oEmbed and API links are not feeds', async () => {
      const base = `/multi-${++seq}/`;
      const home = web.url(base);
      web.set(base, {
        contentType: HTML,
        body: homePage(
          [
            `<link rel="alternate" type="application/rss+xml" title="RSS" href="${base}feed.rss">`,
            `<link rel="alternate" type="application/atom+xml" title="Atom" href="${base}feed.atom">`,
            `<link rel="alternate" type="application/feed+json" title="JSON Feed" href="${base}feed.json">`,
            `<link rel="alternate" type="application/json+oembed" href="${base}oembed.json">`,
            `<link rel="alternate" type="application/json" href="${base}wp-json/wp/v2/pages/2">`,
            `<link rel="alternate" type="text/html" hreflang="fr" href="${base}fr/">`,
          ].join('\n'),
        ),
      });
      web.set(`${base}feed.rss`, { body: rssFeed(home, ['a']), contentType: RSS });
      web.set(`${base}feed.atom`, { body: atomFeed(home, ['a']), contentType: ATOM });
      web.set(`${base}feed.json`, { body: jsonFeed(home, ['a']), contentType: JSON_FEED });

      expect(await call('weblogUpdates.ping', ['Multi', home])).to.deep.equal(answer(THANKS));
      for (const f of ['feed.rss', 'feed.atom', 'feed.json']) expect(reads(`${base}${f}`), f).to.equal(1);
      for (const f of ['oembed.json', 'wp-json/wp/v2/pages/2', 'fr/']) expect(reads(`${base}${f}`), f).to.equal(0);
      expect((await hub.store.getSite(home))?.feeds).to.deep.equal([`${home}feed.rss`, `${home}feed.atom`, `${home}feed.json`]);
    });

    it('at most 5 feeds per site are read, so a page cannot turn one ping into many fetches', async () => {
      const base = `/many-${++seq}/`;
      const links = Array.from({ length: 8 }, (_, i) => `<link rel="alternate" type="application/rss+xml" href="${base}f${i + 1}.xml">`);
      web.set(base, { contentType: HTML, body: homePage(links.join('\n')) });
      for (let i = 1; i <= 8; i++) web.set(`${base}f${i}.xml`, { body: rssFeed(web.url(base), [`p${i}`]), contentType: RSS });
      expect(await call('weblogUpdates.ping', ['Many', web.url(base)])).to.deep.equal(answer(THANKS));
      expect([1, 2, 3, 4, 5, 6, 7, 8].map((i) => reads(`${base}f${i}.xml`))).to.deep.equal([1, 1, 1, 1, 1, 0, 0, 0]);
    });

    it('a feed that cannot be read does not spoil the others; only when none can is the answer flerror', async () => {
      const base = `/partly-${++seq}/`;
      web.set(base, {
        contentType: HTML,
        body: homePage(`<link rel="alternate" type="application/rss+xml" href="${base}gone.xml"><link rel="alternate" type="application/atom+xml" href="${base}feed.atom">`),
      });
      web.set(`${base}feed.atom`, { body: atomFeed(web.url(base), ['a']), contentType: ATOM });
      expect(await call('weblogUpdates.ping', ['Partly', web.url(base)])).to.deep.equal(answer(THANKS));
      expect(reads(`${base}feed.atom`)).to.equal(1);
    });
  });

  describe('failures are flerror true, never faults', () => {
    it('an unreachable site', async () => {
      const gone = await Recorder.start();
      const home = `${gone.url}/`;
      await gone.close();
      const result = await call('weblogUpdates.ping', ['Gone', home]);
      expect(result).to.deep.equal(answer({ flerror: true, message: MSG.pingReadError(home) }));
    });

    it('an unreachable feed named by extendedPing', async () => {
      const b = blog();
      const missing = web.url('/nowhere/feed/');
      expect(await call('weblogUpdates.extendedPing', ['A blog', b.home, missing])).to.deep.equal(answer({ flerror: true, message: MSG.pingReadError(missing) }));
    });

    it('a site page that links to no feed', async () => {
      const base = `/nofeed-${++seq}/`;
      web.set(base, { contentType: HTML, body: homePage('<link rel="stylesheet" href="/style.css">') });
      const result = await call('weblogUpdates.ping', ['No feed', web.url(base)]);
      expect(result).to.deep.equal(answer({ flerror: true, message: `No feed was found at URL ${web.url(base)}: the page links to no RSS, Atom or JSON Feed.` }));
    });

    it('extendedPing naming as its feed a page that links to no feed', async () => {
      const b = blog();
      const base = `/nofeed-ext-${++seq}/`;
      web.set(base, { contentType: HTML, body: homePage('<link rel="stylesheet" href="/style.css">') });
      const result = await call('weblogUpdates.extendedPing', ['A blog', b.home, web.url(base)]);
      expect(result).to.deep.equal(answer({ flerror: true, message: `No feed was found at URL ${web.url(base)}: the page links to no RSS, Atom or JSON Feed.` }));
    });

    it('a feed at an address the hub may not fetch (the address guard applies to discovered feeds)', async () => {
      const base = `/guarded-${++seq}/`;
      web.set(base, { contentType: HTML, body: homePage('<link rel="alternate" type="application/rss+xml" href="http://10.11.12.13/feed.xml">') });
      const result = await call('weblogUpdates.ping', ['Guarded', web.url(base)]);
      expect(result).to.deep.equal(answer({ flerror: true, message: MSG.pingReadError('http://10.11.12.13/feed.xml') }));
    });

    const badCalls: [string, unknown[], RegExp][] = [
      ['weblogUpdates.ping', ['only a name'], /^Can't call "weblogUpdates\.ping" because there aren't enough parameters: it takes \(name, siteUrl/],
      ['weblogUpdates.ping', ['a', 'http://127.0.0.1/', 'b', 'c', 'd'], /because there are too many parameters/],
      ['weblogUpdates.extendedPing', ['A blog', 'http://127.0.0.1/'], /^Can't call "weblogUpdates\.extendedPing" because there aren't enough parameters/],
      ['weblogUpdates.extendedPing', ['a', 'b', 'c', 'd', 'e', 'f'], /because there are too many parameters/],
      ['weblogUpdates.rssUpdate', ['A blog'], /^Can't call "weblogUpdates\.rssUpdate" because there aren't enough parameters: it takes \(name, feedUrl\) as strings\.$/],
      ['weblogUpdates.rssUpdate', ['A blog', 42], /because the parameters are not all strings/],
      ['weblogUpdates.rssUpdate', ['A blog', 'example.com/feed'], /^Can't call "weblogUpdates\.rssUpdate" because the feed URL is not an absolute URL: it takes \(name, feedUrl\) as strings\.$/],
      ['weblogUpdates.ping', ['A blog', ['http://127.0.0.1/']], /because the parameters are not all strings/],
      ['weblogUpdates.ping', ['A blog', 'not a url'], /because the site URL is not an absolute URL: it takes/],
      ['weblogUpdates.ping', ['A blog', 'ftp://127.0.0.1/'], /because the site URL must be an http or https URL/],
      ['weblogUpdates.extendedPing', ['A blog', 'http://127.0.0.1/', 'javascript:alert(1)'], /because the feed URL must be an http or https URL/],
    ];
    for (const [method, params, message] of badCalls) {
      it(`${method}(${params.map((p) => JSON.stringify(p)).join(', ')})`, async () => {
        const result = await call(method, params);
        expect(result.ok, JSON.stringify(result)).to.equal(true);
        const value = (result as { value: { flerror: unknown; message: unknown } }).value;
        expect(value.flerror).to.equal(true);
        expect(value.message).to.be.a('string').and.match(message);
      });
    }

    it('an unknown weblogUpdates method is still the usual fault', async () => {
      expect(await call('weblogUpdates.pingg', ['a', 'b'])).to.deep.equal({ ok: false, faultCode: 4, faultString: MSG.notDefined('weblogUpdates.pingg') });
    });
  });

  describe('end to end: a post reaches every protocol', () => {
    it('weblogUpdates.ping(name, home) → the discovered feed → an rssCloud subscriber (bare), a WebSub subscriber (full content) and an SSE client', async () => {
      const b = blog();
      // rssCloud: a form pleaseNotify for the feed; the hub tests the handler with a POST.
      const cloud = await cloudReader(b.feed);
      // WebSub, with a secret.
      const ws = await Subscriber.start();
      extra.push(ws);
      expect((await subscribe(hub, { 'hub.topic': b.feed, 'hub.callback': ws.callback('/ws') })).status).to.equal(202);
      await ws.waitVerifications(1, 'subscribe');
      await settled(hub);
      // A browser.
      const sse = await RawSse.open(hub.url, b.feed);
      extra.push({ close: async () => sse.close() });
      cloud.reset();
      web.rec.reset();

      b.post('second-post');
      expect(await call('weblogUpdates.ping', ['A blog', b.home])).to.deep.equal(answer(THANKS));

      const [bare] = await cloud.waitFor(1, (r) => r.method === 'POST' && r.path === '/notify');
      expect(bare!.body.toString()).to.equal(notifyBody(b.feed));

      const [full] = await ws.waitDeliveries(1, '/ws');
      expect(full!.headers['content-type']).to.equal(RSS);
      const body = full!.body.toString();
      expect(body).to.include('<title>second-post</title>');
      expect(body, 'only the new entry').not.to.include('<title>hello-world</title>');
      const links = parseLinks(full!.headers['link']);
      expect(links).to.deep.include({ url: `${hub.url}/websub`, rel: 'hub' });
      expect(links).to.deep.include({ url: b.feed, rel: 'self' });

      const change = await sse.waitFor('change');
      const data = JSON.parse(change.data) as { topic: string; entries: { title: string }[] };
      expect(data.topic).to.equal(b.feed);
      expect(data.entries.map((e) => e.title)).to.deep.equal(['second-post']);

      expect(reads(b.homePath)).to.equal(1);
      expect(reads(b.feedPath)).to.equal(1);
    });

    it("WordPress's extendedPing reaches them too, and a ping with nothing new notifies nobody", async () => {
      const b = blog();
      const cloud = await cloudReader(b.feed);
      b.post('news');
      expect(await call('weblogUpdates.extendedPing', ['A blog', b.home, b.feed])).to.deep.equal(answer(THANKS));
      await cloud.waitFor(1, (r) => r.method === 'POST');
      expect(await call('weblogUpdates.extendedPing', ['A blog', b.home, b.feed])).to.deep.equal(answer(THANKS));
      await settled(hub);
      await sleep(200);
      expect(notificationsAt(cloud, '/notify')).to.have.length(1);
    });
  });

  describe('the site → feeds mapping', () => {
    it('is remembered: a second ping within SITE_RECHECK_SECONDS reads the feed, not the home page', async () => {
      const b = blog();
      expect(await call('weblogUpdates.ping', ['A blog', b.home])).to.deep.equal(answer(THANKS));
      b.post('two');
      expect(await call('weblogUpdates.ping', ['A blog', b.home])).to.deep.equal(answer(THANKS));
      expect(reads(b.homePath)).to.equal(1);
      expect(reads(b.feedPath)).to.equal(2);
    });

    it('a page the hub last read as a topic answers 304 (ETag): it is read once more, unconditionally, for its feeds', async () => {
      const b = blog();
      web.set(b.homePath, { body: homePage(wordpressHead(b.homePath)), contentType: HTML, etag: '"home-v1"' });
      // A WebSub publish names a topic, never a site: the page is read and remembered as a topic.
      expect((await publish(hub, b.home)).status).to.equal(204);
      await settled(hub);
      expect(reads(b.feedPath)).to.equal(0);
      web.rec.reset();
      expect(await call('weblogUpdates.ping', ['A blog', b.home])).to.deep.equal(answer(THANKS));
      const homeReads = web.fetches(b.homePath);
      expect(homeReads.map((r) => r.headers['if-none-match'])).to.deep.equal(['"home-v1"', undefined]);
      expect(reads(b.feedPath)).to.equal(1);
      expect((await hub.store.getSite(b.home))?.feeds).to.include(b.feed);
    });

    it('with SITE_RECHECK_SECONDS=0 the page is read on every ping; a 304 confirms the remembered feeds', async () => {
      const always = await startTestHub({ SITE_RECHECK_SECONDS: '0' });
      extra.push(always);
      const b = blog();
      web.set(b.homePath, { body: homePage(wordpressHead(b.homePath)), contentType: HTML, etag: '"home-v1"' });
      expect(await call('weblogUpdates.ping', ['A blog', b.home], always)).to.deep.equal(answer(THANKS));
      const first = await always.store.getSite(b.home);
      expect(await call('weblogUpdates.ping', ['A blog', b.home], always)).to.deep.equal(answer(THANKS));
      expect(web.fetches(b.homePath).map((r) => r.headers['if-none-match'])).to.deep.equal([undefined, '"home-v1"']);
      expect(reads(b.feedPath)).to.equal(2);
      const second = await always.store.getSite(b.home);
      expect(second?.feeds).to.deep.equal(first?.feeds);
      expect(second!.whenChecked).to.be.at.least(first!.whenChecked);
    });

    it('survives a restart', async () => {
      const dir = await tempDataDir();
      const b = blog();
      const first = await startTestHub({}, dir);
      expect(await call('weblogUpdates.ping', ['A blog', b.home], first)).to.deep.equal(answer(THANKS));
      await first.close();
      const second = await startTestHub({}, dir);
      extra.push(second);
      expect(await second.store.getSite(b.home)).to.include({ url: b.home }).and.have.deep.property('feeds', [b.feed, web.url(`${b.homePath}comments/feed/`)]);
      expect(await call('weblogUpdates.ping', ['A blog', b.home], second)).to.deep.equal(answer(THANKS));
      expect(reads(b.homePath)).to.equal(1);
      expect(reads(b.feedPath)).to.equal(2);
    });

    it('is read again once older than SITE_RECHECK_SECONDS, and picks up a feed the page added', async () => {
      const recheck = await startTestHub({ SITE_RECHECK_SECONDS: '1' });
      extra.push(recheck);
      const b = blog((base) => `<link rel="alternate" type="application/rss+xml" href="${base}feed/">`);
      expect(await call('weblogUpdates.ping', ['A blog', b.home], recheck)).to.deep.equal(answer(THANKS));
      expect(await call('weblogUpdates.ping', ['A blog', b.home], recheck)).to.deep.equal(answer(THANKS));
      expect(reads(b.homePath)).to.equal(1);
      const atomPath = `${b.homePath}feed/atom/`;
      web.set(atomPath, { body: atomFeed(b.home, ['hello-world']), contentType: ATOM });
      web.set(b.homePath, {
        contentType: HTML,
        body: homePage(`<link rel="alternate" type="application/rss+xml" href="${b.homePath}feed/"><link rel="alternate" type="application/atom+xml" href="${atomPath}">`),
      });
      await sleep(1100);
      expect(await call('weblogUpdates.ping', ['A blog', b.home], recheck)).to.deep.equal(answer(THANKS));
      expect(reads(b.homePath)).to.equal(2);
      expect(reads(atomPath)).to.equal(1);
      expect((await recheck.store.getSite(b.home))?.feeds).to.deep.equal([b.feed, web.url(atomPath)]);
    });
  });

  describe('the REST ping with a site URL', () => {
    it('POST /ping url=<home page> pings the discovered feed: "Thanks for the ping.", and its subscribers hear of it', async () => {
      const b = blog();
      const cloud = await cloudReader(b.feed);
      web.rec.reset();
      b.post('rest');
      const reply = await ping(hub, b.home);
      expect(reply).to.include({ success: true, msg: MSG.pinged });
      // An rssCloud ping answers after the first delivery attempts, as for a feed.
      expect(notificationsAt(cloud, '/notify').map((r) => r.body.toString())).to.deep.equal([notifyBody(b.feed)]);
      expect(reads(b.homePath)).to.equal(1);
      expect(reads(b.feedPath)).to.equal(1);
      expect(await ping(hub, b.home, { accept: 'application/json' })).to.include({ root: 'json', success: true, msg: MSG.pinged });
      expect(reads(b.homePath), 'remembered').to.equal(1);
    });

    it('a page without feeds was read, as a ping asks: "Thanks for the ping."; one that cannot be read answers the read-error words', async () => {
      const base = `/rest-nofeed-${++seq}/`;
      web.set(base, { contentType: HTML, body: homePage('') });
      expect(await ping(hub, web.url(base))).to.include({ success: true, msg: MSG.pinged });
      expect(await hub.store.getTopic(web.url(base)), 'stored like any pinged URL').to.not.equal(undefined);
      const missing = web.url(`/rest-missing-${seq}/`);
      expect(await ping(hub, missing)).to.include({ success: false, msg: MSG.pingReadError(missing) });
    });

    it('an HTML topic somebody follows stays a topic: its subscribers get the page, its alternates are not read', async () => {
      const b = blog();
      const ws = await Subscriber.start();
      extra.push(ws);
      expect((await subscribe(hub, { 'hub.topic': b.home, 'hub.callback': ws.callback('/page') })).status).to.equal(202);
      await ws.waitVerifications(1, 'subscribe');
      await settled(hub);
      expect(await ping(hub, b.home)).to.include({ success: true, msg: MSG.pinged });
      const [delivery] = await ws.waitDeliveries(1, '/page');
      expect(delivery!.headers['content-type']).to.equal(HTML);
      expect(delivery!.body.toString()).to.include('<h1>A blog</h1>');
      expect(reads(b.feedPath)).to.equal(0);
      expect(await hub.store.getSite(b.home)).to.equal(undefined);
    });

    it('a weblogUpdates ping of a page somebody follows reaches both: the page\'s subscribers get the page, the feed\'s its new entries', async () => {
      const b = blog();
      const ws = await Subscriber.start();
      extra.push(ws);
      expect((await subscribe(hub, { 'hub.topic': b.home, 'hub.callback': ws.callback('/page') })).status).to.equal(202);
      expect((await subscribe(hub, { 'hub.topic': b.feed, 'hub.callback': ws.callback('/feed') })).status).to.equal(202);
      await ws.waitVerifications(2, 'subscribe');
      await settled(hub);
      b.post('a-new-post');
      expect(await call('weblogUpdates.ping', ['A blog', b.home])).to.deep.equal(answer(THANKS));
      const [page] = await ws.waitDeliveries(1, '/page');
      expect(page!.headers['content-type']).to.equal(HTML);
      expect(page!.body.toString()).to.include('<h1>A blog</h1>');
      const [feed] = await ws.waitDeliveries(1, '/feed');
      expect(feed!.body.toString()).to.include('a-new-post');
      expect((await hub.store.getSite(b.home))?.feeds).to.include(b.feed);
    });

    it('a feed served as text/html is still a feed, not a site', async () => {
      const path = `/mislabelled-${++seq}/feed/`;
      web.set(path, { body: rssFeed(web.url('/'), ['a']), contentType: HTML });
      expect(await ping(hub, web.url(path))).to.include({ success: true, msg: MSG.pinged });
      expect(await call('weblogUpdates.rssUpdate', ['A blog', web.url(path)])).to.deep.equal(answer(THANKS));
      expect(await hub.store.getSite(web.url(path))).to.equal(undefined);
    });

    it('a feed URL is pinged as before, and GET /ping or a url only in the query string are still refused', async () => {
      const b = blog();
      expect(await ping(hub, b.feed)).to.include({ success: true, msg: MSG.pinged });
      expect(await hub.store.getSite(b.feed)).to.equal(undefined);
      const get = await fetch(`${hub.url}/ping?url=${encodeURIComponent(b.home)}`);
      expect(get.status).to.equal(404);
      await get.arrayBuffer();
      const queryOnly = await readReply(await postForm(hub.url, `/ping?url=${encodeURIComponent(b.home)}`, {}));
      expect(queryOnly).to.include({ success: false, msg: MSG.missing('url') });
      expect(reads(b.homePath)).to.equal(0);
    });
  });

  // The journal and snapshot shards in DATA_DIR are the embedded store's; the PostgreSQL store
  // keeps sites in a table (its round trip is in the store contract, test/helpers/store-contract.ts).
  embeddedOnly("reads the embedded store's journal and snapshot shards", () => {
    describe('the embedded store keeps sites', () => {
      it('journaled, in the snapshot shards after compaction, as copies; clear() removes them', async () => {
        const dir = await tempDataDir();
        const site: Site = {
          url: 'https://blog.example/',
          feeds: ['https://blog.example/feed/', 'https://blog.example/feed/atom/'],
          hubs: ['https://hub.example/'],
          self: 'https://blog.example/',
          whenChecked: 2,
          whenCreated: 1,
        };
        const open = async (): Promise<LowdbStore> => {
          const store = new LowdbStore({ dir });
          await store.open();
          return store;
        };
        try {
          let store = await open();
          expect(await store.getSite(site.url)).to.equal(undefined);
          await store.putSite(site);
          (await store.getSite(site.url))!.feeds.push('https://elsewhere.example/');
          expect(await store.getSite(site.url), 'a copy is returned').to.deep.equal(site);
          await store.close();

          store = await open();
          expect(await store.getSite(site.url), 'replayed from the journal').to.deep.equal(site);
          await store.putSite({ ...site, feeds: [site.feeds[0]!], whenChecked: 3 });
          await store.compact();
          await store.close();
          const shards = (await readdir(dir)).filter((f) => /^snapshot-\d+\.json$/.test(f));
          const texts = await Promise.all(shards.map((f) => readFile(path.join(dir, f), 'utf8')));
          expect(texts.filter((t) => t.includes('"sites":[{'))).to.have.length(1);

          store = await open();
          expect(store.stats().open.opsReplayed, 'nothing left in the journal').to.equal(0);
          expect(await store.getSite(site.url)).to.deep.equal({ ...site, feeds: [site.feeds[0]], whenChecked: 3 });
          await store.clear();
          expect(await store.getSite(site.url)).to.equal(undefined);
          await store.close();
          store = await open();
          expect(await store.getSite(site.url)).to.equal(undefined);
          await store.close();
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      });
    });
  });
});
