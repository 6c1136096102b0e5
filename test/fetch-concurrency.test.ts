// FETCH_CONCURRENCY: a flood of pings naming many slow feeds reads at most that many at once,
// and a read that cannot get a turn within REQUEST_TIMEOUT_MS fails as a read timeout, with
// rssCloud's own reply, instead of the hub opening a connection per feed.
import { expect } from 'chai';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startTestHub, type TestHub } from './helpers/hub.js';
import { Recorder, type Recorded } from './helpers/recorder.js';
import { MSG, ping, pleaseNotify, subscribeAllForm } from './helpers/rsscloud.js';
import { FetchSlots } from '../lib/fetch-slots.js';

/** A feed; `version` names its one item, so a feed read after `version` changed is a change. */
function rss(version: string): string {
  return `<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><link>http://example.com/</link><description>d</description><item><title>${version}</title><guid>${version}</guid></item></channel></rss>`;
}

/** A feed server whose feeds answer only when `answer` lets them; counts the reads in flight. */
class SlowFeeds {
  inFlight = 0;
  peak = 0;
  readonly held: http.ServerResponse[] = [];
  /** Every path asked for, in order. */
  readonly asked: string[] = [];
  /** What every feed shows (see rss). */
  version = 'a';
  /** Set by answerAll: how long each read then takes; unset, reads are held. */
  private delayMs: number | undefined;
  private waiters: (() => void)[] = [];
  private constructor(readonly server: http.Server) {}

  static async start(): Promise<SlowFeeds> {
    const feeds: SlowFeeds = new SlowFeeds(
      http.createServer((req, res) => {
        feeds.asked.push(req.url ?? '');
        feeds.inFlight++;
        feeds.peak = Math.max(feeds.peak, feeds.inFlight);
        res.on('close', () => feeds.inFlight--);
        if (feeds.delayMs !== undefined) return feeds.answer(res);
        feeds.held.push(res);
        for (const w of feeds.waiters.splice(0)) w();
      }),
    );
    await new Promise<void>((resolve) => feeds.server.listen(0, '127.0.0.1', resolve));
    return feeds;
  }

  url(name: string): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/${name}.xml`;
  }

  /** Resolves once `n` reads are held. */
  async holding(n: number): Promise<void> {
    while (this.held.length < n) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  /** Answers the held reads, and every later one, after `delayMs` each (0: a turn of the event loop). */
  answerAll(delayMs = 0): void {
    this.delayMs = delayMs;
    for (const res of this.held.splice(0)) this.answer(res);
  }

  /** Holds every later read again, until answerAll. */
  holdAll(): void {
    this.delayMs = undefined;
  }

  private answer(res: http.ServerResponse): void {
    const send = (): void => void res.writeHead(200, { 'content-type': 'application/rss+xml' }).end(rss(this.version));
    if (this.delayMs) setTimeout(send, this.delayMs);
    else setImmediate(send);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

describe('FETCH_CONCURRENCY', function () {
  let hub: TestHub | undefined;
  let feeds: SlowFeeds | undefined;

  afterEach(async () => {
    await hub?.destroy();
    await feeds?.close();
    hub = feeds = undefined;
  });

  it('reads at most FETCH_CONCURRENCY feeds at once, and the rest in turn', async () => {
    feeds = await SlowFeeds.start();
    hub = await startTestHub({ FETCH_CONCURRENCY: '2' });
    const urls = Array.from({ length: 6 }, (_, i) => feeds!.url(`feed-${i}`));
    let asked = 0;
    const allAsked = new Promise<void>((resolve) => hub!.hub.on('published', () => ++asked === urls.length && resolve()));
    const pings = urls.map((u) => ping(hub!, u));
    // Every ping has asked for its read and two reads are held: the hub must not start a third.
    // A request to the hub round-trips through its event loop, by which time a read it had
    // started would have reached the feed server (without the bound, more are held here).
    await Promise.all([allAsked, feeds.holding(2)]);
    expect((await fetch(`${hub.url}/healthz`)).status).to.equal(200);
    expect(feeds.held.length, 'reads started while two were held').to.equal(2);
    feeds.answerAll();
    const replies = await Promise.all(pings);
    for (const r of replies) expect(r).to.include({ success: true, msg: MSG.pinged });
    expect(feeds.peak).to.equal(2);
  });

  it('answers a ping whose read got no turn within REQUEST_TIMEOUT_MS with the unreadable reply', async () => {
    feeds = await SlowFeeds.start();
    hub = await startTestHub({ FETCH_CONCURRENCY: '1', REQUEST_TIMEOUT_MS: '1000' });
    // The slot is held by a read that never gets an answer until its own deadline; the next
    // in line gets it then, and holds it until its deadline; the third waits longer than
    // REQUEST_TIMEOUT_MS for a turn and gives up without reaching the feed.
    const first = ping(hub, feeds.url('first'));
    await feeds.holding(1);
    const second = ping(hub, feeds.url('second'));
    const third = ping(hub, feeds.url('third'));
    const replies = await Promise.all([first, second, third]);
    expect(replies.map((r) => r.success)).to.deep.equal([false, false, false]);
    expect(replies[2]).to.include({ msg: MSG.pingReadError(feeds.url('third')) });
    expect(feeds.asked).to.deep.equal(['/first.xml', '/second.xml']);
    // The slots given up and handed back are free again: the next read goes out.
    feeds.answerAll();
    expect(await ping(hub, feeds.url('after'))).to.include({ success: true, msg: MSG.pinged });
  });
});

// FETCH_PER_HOST: a publisher host pinging hundreds of its feeds at once gets a few reads at a
// time, every one of them read in the end, and a ping from another host is read at once, beside
// the burst rather than behind it.
// A host is keyed as for deliveries (lib/model.ts hostKey: host:port), so two servers on
// 127.0.0.1 on two ports are two hosts.
describe('FETCH_PER_HOST', function () {
  let hub: TestHub | undefined;
  let big: SlowFeeds | undefined;
  let small: SlowFeeds | undefined;

  afterEach(async () => {
    await hub?.destroy();
    await big?.close();
    await small?.close();
    hub = big = small = undefined;
  });

  /** Pings `urls` and resolves once the hub has taken every ping in (each has asked for its read). */
  async function burst(h: TestHub, urls: string[]): Promise<Promise<Awaited<ReturnType<typeof ping>>>[]> {
    let asked = 0;
    const allAsked = new Promise<void>((resolve) => h.hub.on('published', () => ++asked === urls.length && resolve()));
    const pings = urls.map((u) => ping(h, u));
    await allAsked;
    return pings;
  }

  it('reads at most 8 feeds of one host at once by default, and another host\'s feed meanwhile', async () => {
    big = await SlowFeeds.start();
    small = await SlowFeeds.start();
    // The default DATABASE_POOL_SIZE (10) on PostgreSQL: a read takes its turn before its
    // topic lock's connection, so the 32 reads waiting in the busy host's line hold none, and the
    // other host's read gets one (it waited behind the burst for a connection, and failed).
    hub = await startTestHub();
    const urls = Array.from({ length: 40 }, (_, i) => big!.url(`blog-${i}`));
    const pings = await burst(hub, urls);
    await big.holding(8);
    // Every read the hub would start has reached the feed server by the time it answers this.
    expect((await fetch(`${hub.url}/healthz`)).status).to.equal(200);
    expect(big.held.length, 'reads of the busy host held at once').to.equal(8);
    // The other publisher's ping is read while the busy host's reads are all still held.
    small.answerAll();
    expect(await ping(hub, small.url('news'))).to.include({ success: true, msg: MSG.pinged });
    expect(big.held.length).to.equal(8);
    big.answerAll();
    for (const r of await Promise.all(pings)) expect(r).to.include({ success: true, msg: MSG.pinged });
    expect(big.peak).to.equal(8);
    expect(big.asked).to.have.length(40);
  });

  it('gives another host a FETCH_CONCURRENCY slot while one host\'s burst waits for its own', async () => {
    big = await SlowFeeds.start();
    small = await SlowFeeds.start();
    // Two slots in all, one per host: the busy host's burst never holds the second.
    hub = await startTestHub({ FETCH_CONCURRENCY: '2', FETCH_PER_HOST: '1' });
    const urls = Array.from({ length: 10 }, (_, i) => big!.url(`blog-${i}`));
    const pings = await burst(hub, urls);
    await big.holding(1);
    small.answerAll();
    expect(await ping(hub, small.url('news'))).to.include({ success: true, msg: MSG.pinged });
    expect(big.held.length).to.equal(1);
    big.answerAll();
    for (const r of await Promise.all(pings)) expect(r).to.include({ success: true, msg: MSG.pinged });
    expect(big.peak).to.equal(1);
  });

  it('gives back the turn of a read outside a topic refresh (a discovery), so the host\'s next read goes', async function () {
    this.timeout(5000);
    big = await SlowFeeds.start();
    hub = await startTestHub({ FETCH_PER_HOST: '1' });
    big.answerAll();
    for (const name of ['one', 'two', 'three']) {
      const res = await fetch(`${hub.url}/websub?hub.mode=discover&hub.topic=${encodeURIComponent(big.url(name))}`);
      expect(res.status, name).to.equal(200);
    }
    expect(big.asked).to.deep.equal(['/one.xml', '/two.xml', '/three.xml']);
  });

  it('reads every feed of a burst in its host\'s turn, however long its line, and tells every subscriber of each', async () => {
    big = await SlowFeeds.start();
    small = await SlowFeeds.start();
    const subs = await Recorder.start();
    try {
      // A ping's answer is due 2 × 1,000 + 1,000 ms after it came; 40 reads of 200 ms, 2 at a
      // time, take 4 s at least: the last pings in line are answered before their feed is read.
      hub = await startTestHub({ FETCH_PER_HOST: '2', REQUEST_TIMEOUT_MS: '1000' });
      const urls = Array.from({ length: 40 }, (_, i) => big!.url(`blog-${i}`));
      big.answerAll();
      for (const part of [urls.slice(0, 20), urls.slice(20)]) {
        expect(await pleaseNotify(hub, subscribeAllForm(subs, '/cb', part))).to.include({ success: true });
      }
      await hub.hub.idle();
      // Every feed changes, and the blog host pings them all at once.
      big.version = 'b';
      big.holdAll();
      big.peak = 0;
      subs.reset();
      const pings = await burst(hub, urls);
      await big.holding(2);
      // Another host's ping is read and answered while the busy host's line is still full.
      small.answerAll();
      expect(await ping(hub, small.url('news'))).to.include({ success: true, msg: MSG.pinged });
      expect(big.held.length).to.equal(2);
      big.answerAll(200);
      const replies = await Promise.all(pings);
      // Answered in time: read, its subscribers told. Past its answer's deadline: the pinger
      // hears "could not read", and the read goes on (lib/hub.ts pingedBy).
      const late = replies.filter((r, i) => r.msg === MSG.pingReadError(urls[i]!));
      for (const r of replies) if (!late.includes(r)) expect(r).to.include({ success: true, msg: MSG.pinged });
      expect(late, 'pings answered before their feed was read').to.not.be.empty;
      // Every feed is read, and every subscriber told, once.
      const notified = (r: Recorded): string => new URLSearchParams(r.body.toString()).get('url') ?? '';
      await subs.waitFor(40, (r) => r.method === 'POST', 10_000);
      await hub.hub.idle();
      expect(subs.matching((r) => r.method === 'POST').map(notified).sort()).to.deep.equal([...urls].sort());
      expect(big.peak).to.equal(2);
    } finally {
      await subs.close();
    }
  });

  it('refuses a read at once when its host\'s line is full, as unreadable, and reads those in line', async () => {
    big = await SlowFeeds.start();
    // A line of 2 (WAITING_PER_HOST, 1,000, in production).
    hub = await startTestHub({ FETCH_PER_HOST: '1' }, undefined, { fetchWaitingPerHost: 2 });
    const first = ping(hub, big.url('first'));
    await big.holding(1);
    const inLine = await burst(hub, [big.url('second'), big.url('third')]);
    // The line holds 2: the next is refused at once, while the first read is still held.
    expect(await ping(hub, big.url('fourth'))).to.include({ success: false, msg: MSG.pingReadError(big.url('fourth')) });
    expect(big.asked).to.deep.equal(['/first.xml']);
    big.answerAll();
    for (const r of await Promise.all([first, ...inLine])) expect(r).to.include({ success: true, msg: MSG.pinged });
    expect(big.asked).to.deep.equal(['/first.xml', '/second.xml', '/third.xml']);
    // The line has room again.
    expect(await ping(hub, big.url('fifth'))).to.include({ success: true, msg: MSG.pinged });
  });

  it('drops the reads waiting in a host\'s line at a stop, rather than waiting for them', async () => {
    big = await SlowFeeds.start();
    hub = await startTestHub({ FETCH_PER_HOST: '1', REQUEST_TIMEOUT_MS: '1000' });
    const urls = Array.from({ length: 20 }, (_, i) => big!.url(`blog-${i}`));
    const pings = await burst(hub, urls);
    await big.holding(1);
    // Waiting for the line, the stop would last 20 reads of REQUEST_TIMEOUT_MS each.
    await hub.close();
    const replies = await Promise.all(pings);
    for (const [i, r] of replies.entries()) expect(r).to.include({ success: false, msg: MSG.pingReadError(urls[i]!) });
    expect(big.asked, 'reads started').to.have.length(1);
  });

  it('shares one read among the pings of one feed queued during its host\'s burst', async () => {
    big = await SlowFeeds.start();
    hub = await startTestHub({ FETCH_PER_HOST: '2' });
    const urls = [...Array.from({ length: 4 }, (_, i) => big!.url(`blog-${i}`)), big.url('blog-3'), big.url('blog-3')];
    const pings = await burst(hub, urls);
    await big.holding(2);
    big.answerAll();
    for (const r of await Promise.all(pings)) expect(r).to.include({ success: true, msg: MSG.pinged });
    // The first ping of blog-3 queued its read, waiting in its host's line; the two after it
    // share that read, which has not begun (lib/hub.ts serialize): one read, not three.
    expect(big.asked.filter((p) => p === '/blog-3.xml')).to.have.length(1);
    expect(big.peak).to.equal(2);
  });
});

// The lines themselves: a host's is forgotten once it has nothing in it, so a hub pinged for
// feeds on ever new hosts (every blog of a platform has its own) keeps no entry per host read.
describe('FetchSlots', function () {
  it('gives a host its turn back and keeps no line for it once its reads are done, given up or refused', async () => {
    const slots = new FetchSlots(1, 1, 1);
    const lines = (slots as unknown as { perHost: { size: number } }).perHost;
    for (let i = 0; i < 50; i++) (await slots.take(`host-${i}:80`, 1000))();
    expect(lines.size, 'after reads done').to.equal(0);
    const holder = await slots.take('busy:80', 1000);
    // In line for the global turn, given up after 10 ms.
    const late = await slots.take('other:80', 10).then(
      () => 'taken',
      (e: Error) => e.message,
    );
    expect(late).to.match(/no fetch slot free/);
    holder();
    // Its host's turn was given back: kept, every later read of that host would wait for ever.
    (await slots.take('other:80', 1000))();
    const holderAgain = await slots.take('busy:80', 1000);
    const inLine = slots.take('busy:80', 1000);
    const refused = await slots.take('busy:80', 1000).then(
      () => 'taken',
      (e: Error) => e.message,
    );
    expect(refused).to.match(/already waiting/);
    holderAgain();
    (await inLine)();
    await new Promise((r) => setImmediate(r));
    expect(lines.size, 'after a read given up, one refused and one in line').to.equal(0);
  });
});
