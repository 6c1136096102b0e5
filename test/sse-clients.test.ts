// The SSE clients people really use, each reproduced here by its habit over raw HTTP. The facts
// come from reading and running each library against the hub (for facts only):
// - eventsource 3 and 4 (Node's most used client; eventsource-parser underneath) and
//   event-source-polyfill 1.0 take an event's id only when the event has data, so an id on a
//   block without data never becomes their Last-Event-ID. The polyfill sends it as a
//   `lastEventId` query parameter (a header would need a CORS preflight), eventsource as the
//   Last-Event-ID header.
// - @microsoft/fetch-event-source 2 hands the page every block a blank line ends, with or without
//   data (extended-eventsource 2 too, after its first): a page that parses each message's data as
//   JSON throws, and fetch-event-source then tears the stream down and reconnects. It sends
//   whatever headers the page gives it, so a browser preflights the stream; a refused preflight
//   is a failed fetch, which it retries every second, for good.
import { expect } from 'chai';
import { startTestHub, type TestHub } from './helpers/hub.js';
import { TopicServer } from './helpers/websub.js';
import { openStream, type SseStream } from './helpers/sse.js';

const RSS_TYPE = 'application/rss+xml';
function rss(...slugs: string[]): string {
  const items = slugs.map((s) => `<item><title>Post ${s}</title><link>https://blog.example/${s}</link><guid>https://blog.example/${s}</guid></item>`).join('\n');
  return `<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel><title>Blog</title><link>https://blog.example/</link>\n${items}\n</channel></rss>\n`;
}

/** The blocks of a stream's body that a blank line has ended, as their lines. */
function blocks(raw: string): string[][] {
  const ended = raw.slice(0, raw.lastIndexOf('\n\n') + 2);
  return ended
    .split('\n\n')
    .slice(0, -1)
    .map((b) => b.split('\n'));
}

/** The Last-Event-ID of a client that takes an id only from an event with data (eventsource 3+, event-source-polyfill). */
function idFromEventsWithData(raw: string): string | undefined {
  let id: string | undefined;
  for (const lines of blocks(raw)) {
    const blockId = lines.filter((l) => l.startsWith('id:')).map((l) => l.slice(3).trimStart()).at(-1);
    if (blockId !== undefined && lines.some((l) => l.startsWith('data:'))) id = blockId;
  }
  return id;
}

describe('SSE clients in the wild', () => {
  let hub: TestHub;
  let topics: TopicServer;
  const open: SseStream[] = [];
  const stream = async (url: string, headers: Record<string, string> = {}): Promise<SseStream> => {
    const s = await openStream(url, headers);
    open.push(s);
    return s;
  };
  const streamUrl = (topic: string, query = ''): string => `${hub.url}/stream?topic=${encodeURIComponent(topic)}${query}`;

  before(async () => {
    hub = await startTestHub({ SSE_HEARTBEAT_MS: '100' });
    topics = await TopicServer.start();
  });
  afterEach(() => {
    for (const s of open.splice(0)) s.close();
  });
  after(async () => {
    await topics?.close();
    await hub?.destroy();
  });

  for (const [client, resume] of [
    ['eventsource 3+ (Last-Event-ID header)', (id: string) => ({ query: '', headers: { 'last-event-id': id } })],
    ['event-source-polyfill (lastEventId query parameter)', (id: string) => ({ query: `&lastEventId=${encodeURIComponent(id)}`, headers: {} })],
  ] as const) {
    it(`${client}: a stream that drops before its first change resumes with the change it missed`, async () => {
      const feed = topics.set(`/before-first-${client.split(' ')[0]}.xml`, { body: rss('a'), contentType: RSS_TYPE });
      expect((await hub.postForm('/ping', { url: feed })).status).to.equal(200);
      const first = await stream(streamUrl(feed));
      // Until the first heartbeat, all the hub sends as a stream opens has come.
      await first.waitForComments(1, 10_000);
      const id = idFromEventsWithData(first.raw());
      first.close();

      topics.set(new URL(feed).pathname, { body: rss('b', 'a'), contentType: RSS_TYPE });
      expect((await hub.postForm('/ping', { url: feed })).status).to.equal(200);
      // Holding no id, it opens a fresh stream, as the library does.
      const { query, headers } = id === undefined ? { query: '', headers: {} } : resume(id);
      const again = await stream(streamUrl(feed, query), headers);
      const [missed] = await again.waitFor(1, (e) => e.event === 'change' || e.event === 'reset', 10_000);
      expect(missed!.event).to.equal('change');
      expect((JSON.parse(missed!.data) as { entries: { title: string }[] }).entries.map((e) => e.title)).to.deep.equal(['Post b']);
    });
  }

  it('@microsoft/fetch-event-source with headers of the page\'s own: the preflight allows them, as a browser reads it', async () => {
    const asked = ['last-event-id', 'cache-control', 'x-requested-with', 'x-client-version'];
    for (const path of [`/stream?topic=${encodeURIComponent('http://127.0.0.1:1/feed.xml')}`, '/events']) {
      const res = await fetch(`${hub.url}${path}`, {
        method: 'OPTIONS',
        headers: { origin: 'https://reader.example', 'access-control-request-method': 'GET', 'access-control-request-headers': asked.join(', ') },
      });
      expect(res.status, path).to.equal(204);
      expect(res.headers.get('access-control-allow-origin'), path).to.equal('*');
      // The Fetch standard's check: a header is allowed when named, or by `*` when no credentials go.
      const allowed = (res.headers.get('access-control-allow-headers') ?? '').split(',').map((h) => h.trim().toLowerCase());
      const wildcard = allowed.includes('*') && res.headers.get('access-control-allow-credentials') !== 'true';
      for (const h of asked) expect(wildcard || allowed.includes(h), `${path}: ${h} in ${JSON.stringify(allowed)}`).to.equal(true);
    }
  });

  for (const path of ['/stream', '/events']) {
    it(`@microsoft/fetch-event-source: every block on ${path} that a page is handed carries JSON data and an event name, heartbeats and the retry hint included`, async () => {
      const feed = topics.set(`/every-block${path}.xml`, { body: rss('a'), contentType: RSS_TYPE });
      const s = await stream(path === '/stream' ? streamUrl(feed) : `${hub.url}/events`);
      expect((await hub.postForm('/ping', { url: feed })).status).to.equal(200);
      await s.waitFor(1, (e) => e.event === (path === '/stream' ? 'change' : 'activity'), 10_000);
      const seen = s.comments.length;
      await s.waitForComments(seen + 2, 10_000);
      expect(s.retry, 'the retry hint still reaches a client').to.equal(2000);
      const handed = blocks(s.raw());
      expect(handed.length).to.be.greaterThan(1);
      for (const lines of handed) {
        const data = lines.filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart());
        expect(data, `a block handed to the page: ${JSON.stringify(lines)}`).to.have.length(1);
        expect(() => JSON.parse(data[0]!), JSON.stringify(lines)).not.to.throw();
        expect(lines.some((l) => /^event: \S/.test(l)), JSON.stringify(lines)).to.equal(true);
      }
    });
  }
});
