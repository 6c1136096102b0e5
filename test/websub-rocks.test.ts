// websub.rocks hub tests 100–106, reproduced over real HTTP on 127.0.0.1 (the site itself
// cannot run here; its mechanics are in ../shared/protocols/websub.md §2). A fake topic server
// plays websub.rocks's public-hub topic (/hub/{n}/pub/{token}) and a fake subscriber makes the
// site's exact checks: verification as `get_subscriber`, delivery as `post_subscriber`.
import { randomBytes } from 'node:crypto';
import type http from 'node:http';
import { expect } from 'chai';
import { Recorder, sleep, type Recorded } from './helpers/recorder.js';
import { startTestHub, type TestHub } from './helpers/hub.js';
import { parseLinks, settled, validSignature } from './helpers/websub.js';

const QUOTES = [
  'The best way to predict the future is to invent it.',
  'Simple things should be simple, complex things should be possible.',
  'Premature optimization is the root of all evil.',
  'There are only two hard things in computer science.',
  'Make it work, make it right, make it fast.',
  'Talk is cheap. Show me the code.',
  'Programs must be written for people to read.',
  'Weeks of coding can save you hours of planning.',
];

type Kind = 'html' | 'text' | 'json';

const CONTENT_TYPES: Record<Kind, string> = {
  // PHP's default for an HTML page: the delivery must carry exactly this string.
  html: 'text/html; charset=UTF-8',
  text: 'text/plain',
  json: 'application/json',
};

/** One websub.rocks test run: its topic, its subscriber and the user's buttons. */
class RocksTest {
  readonly token = randomBytes(8).toString('hex');
  readonly quotes: string[] = [];
  readonly verificationErrors: string[][] = [];
  readonly deliveryVerdicts: Promise<string[]>[] = [];
  private topicServer!: Recorder;
  private subscriber!: Recorder;
  private secret: string | undefined;
  private next = 0;

  constructor(
    private readonly hub: TestHub,
    readonly num: number,
    readonly kind: Kind,
    /** The path of the hub URL the user entered: the WebSub path, or the bare root. */
    private readonly hubPath: '/websub' | '/' = '/websub',
  ) {}

  /** The hub URL "as the user entered it". */
  get hubUrl(): string {
    return `${this.hub.url}${this.hubPath}`;
  }

  get topic(): string {
    return `${this.topicServer.url}/hub/${this.num}/pub/${this.token}`;
  }

  get callback(): string {
    return `${this.subscriber.url}/hub/${this.num}/sub/${this.token}`;
  }

  async start(): Promise<this> {
    this.topicServer = await Recorder.start((req, res) => this.serveTopic(req, res));
    this.subscriber = await Recorder.start((req, res) => this.serveSubscriber(req, res));
    // websub.rocks creates the topic with three random quotes.
    for (let i = 0; i < 3; i++) this.addQuote();
    return this;
  }

  async close(): Promise<void> {
    await this.topicServer?.close();
    await this.subscriber?.close();
  }

  // ---- the topic (public-hub mode) ------------------------------------------------------

  private addQuote(): void {
    this.quotes.unshift(`${QUOTES[this.next % QUOTES.length]} (#${this.next})`);
    this.next++;
  }

  private document(): string {
    switch (this.kind) {
      case 'html':
        return [
          '<!doctype html>',
          '<html>',
          `<head><title>websub.rocks test ${this.num}</title>`,
          `<link rel="hub" href="${this.hubUrl}">`,
          `<link rel="self" href="${this.topic}"></head>`,
          '<body>',
          ...this.quotes.map((q, i) => `<div class="h-entry"><p class="p-content e-content">${q}</p><a class="u-url" href="#quote-${i}">#</a></div>`),
          '</body>',
          '</html>',
          '',
        ].join('\n');
      case 'text':
        return `${this.quotes.join('\n\n')}\n`;
      case 'json':
        return `${JSON.stringify(
          {
            version: 'https://jsonfeed.org/version/1',
            title: `websub.rocks test ${this.num}`,
            home_page_url: this.topic,
            feed_url: this.topic,
            hubs: [{ type: 'WebSub', url: this.hubUrl }],
            items: this.quotes.map((q, i) => ({ id: `${this.topic}#quote-${i}`, content_text: q })),
          },
          null,
          2,
        )}\n`;
    }
  }

  private serveTopic(req: Recorded, res: http.ServerResponse): void {
    if (req.path !== `/hub/${this.num}/pub/${this.token}`) {
      res.writeHead(404).end();
      return;
    }
    res
      .writeHead(200, {
        'content-type': CONTENT_TYPES[this.kind],
        link: `<${this.hubUrl}>; rel="hub", <${this.topic}>; rel="self"`,
      })
      .end(this.document());
  }

  // ---- the subscriber (get_subscriber / post_subscriber) ------------------------------

  private serveSubscriber(req: Recorded, res: http.ServerResponse): void {
    if (req.method === 'GET') return this.verification(req, res);
    if (req.method === 'POST') {
      const verdict = this.delivery(req);
      this.deliveryVerdicts.push(verdict);
      // post_subscriber answers 200 with an empty body whatever its checks found.
      void verdict.finally(() => res.writeHead(200).end());
      return;
    }
    res.writeHead(405).end();
  }

  private verification(req: Recorded, res: http.ServerResponse): void {
    const q = req.query;
    const errors: string[] = [];
    const mode = q.get('hub.mode');
    if (mode === null) errors.push('missing hub.mode');
    else if (mode !== 'subscribe' && mode !== 'unsubscribe') errors.push(`hub.mode is "${mode}"`);
    const topic = q.get('hub.topic');
    if (topic === null) errors.push('missing hub.topic');
    else if (topic !== this.topic) errors.push(`hub.topic is "${topic}", not "${this.topic}"`);
    const challenge = q.get('hub.challenge');
    if (challenge === null) errors.push('missing hub.challenge');
    if (mode === 'subscribe' && !q.has('hub.lease_seconds')) errors.push('missing hub.lease_seconds');
    this.verificationErrors.push(errors);
    if (errors.length > 0 || challenge === null) {
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'invalid_request', error_description: errors.join('; ') }));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(challenge);
  }

  private async delivery(req: Recorded): Promise<string[]> {
    const errors: string[] = [];
    const body = req.body.toString('utf8');
    if (body.trim() === '') errors.push('the notification body was empty');
    const fresh = await fetch(this.topic);
    const freshBody = await fresh.text();
    if (body.trim() !== freshBody.trim()) errors.push('the notification body is not the topic content');
    const type = req.headers['content-type'];
    if (type !== fresh.headers.get('content-type')) errors.push(`Content-Type "${type}" differs from the topic's "${fresh.headers.get('content-type')}"`);
    const links = parseLinks(req.headers['link']);
    const hubLinks = links.filter((l) => l.rel === 'hub');
    if (hubLinks.length === 0) errors.push('no rel=hub Link header');
    else if (!hubLinks.some((l) => l.url === this.hubUrl)) errors.push(`rel=hub is ${hubLinks.map((l) => l.url).join(', ')}, not ${this.hubUrl}`);
    if (!links.some((l) => l.rel === 'self')) errors.push('no rel=self Link header');
    const signature = req.headers['x-hub-signature'];
    if (this.secret === undefined) {
      if (signature !== undefined) errors.push('X-Hub-Signature sent although no secret was given');
    } else if (!validSignature(signature, this.secret, req.body)) {
      errors.push(`X-Hub-Signature ${String(signature)} is missing or invalid`);
    }
    return errors;
  }

  // ---- the buttons ------------------------------------------------------------------

  /** p3k-http: a form POST with a 4 s timeout; only a 202 counts, anything else is "Hub Error". */
  async subscribe(extra: Record<string, string> = {}, mode: 'subscribe' | 'unsubscribe' = 'subscribe'): Promise<void> {
    const form = new URLSearchParams({ 'hub.mode': mode, 'hub.topic': this.topic, 'hub.callback': this.callback, ...extra });
    if (mode === 'subscribe') this.secret = form.get('hub.secret') ?? undefined;
    const res = await fetch(this.hubUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: form.toString(),
      signal: AbortSignal.timeout(4000),
    });
    const text = await res.text();
    expect(res.status, `Hub Error: ${text}`).to.equal(202);
  }

  unsubscribe(): Promise<void> {
    return this.subscribe({}, 'unsubscribe');
  }

  /** "Create Post": a new quote, then hub.mode=publish&hub.topic=… (the answer is ignored). */
  async createPost(): Promise<void> {
    this.addQuote();
    const res = await fetch(this.hubUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ 'hub.mode': 'publish', 'hub.topic': this.topic }).toString(),
    });
    await res.arrayBuffer();
  }

  verificationGets(mode?: string): Recorded[] {
    return this.subscriber.matching((r) => r.method === 'GET' && (mode === undefined || r.query.get('hub.mode') === mode));
  }

  async waitVerification(count: number, mode: string): Promise<void> {
    await this.subscriber.waitFor(count, (r) => r.method === 'GET' && r.query.get('hub.mode') === mode);
    // The hub stores the (un)subscription once it has the answer: let that settle, as the
    // time a person takes to click the next button would.
    await settled(this.hub);
    expect(this.verificationErrors.flat()).to.deep.equal([]);
  }

  deliveries(): Recorded[] {
    return this.subscriber.matching((r) => r.method === 'POST');
  }

  /** Waits for the count-th delivery and expects every delivery so far to have passed. */
  async expectDeliveries(count: number): Promise<void> {
    await this.subscriber.waitFor(count, (r) => r.method === 'POST');
    const verdicts = await Promise.all(this.deliveryVerdicts);
    expect(verdicts.flat()).to.deep.equal([]);
  }
}

describe('websub.rocks hub tests (100–106)', function () {
  let hub: TestHub;
  let run: RocksTest | undefined;

  before(async () => {
    hub = await startTestHub();
  });
  after(async () => {
    await hub.destroy();
  });
  afterEach(async () => {
    await run?.close();
    run = undefined;
  });

  async function start(num: number, kind: Kind, hubPath?: '/websub' | '/'): Promise<RocksTest> {
    run = new RocksTest(hub, num, kind, hubPath);
    return run.start();
  }

  /** Subscribe, verification, Create Post, one good delivery: the shape of 100, 101, 102, 105, 106. */
  async function typical(t: RocksTest, extra: Record<string, string> = {}): Promise<void> {
    await t.subscribe(extra);
    await t.waitVerification(1, 'subscribe');
    await t.createPost();
    await t.expectDeliveries(1);
  }

  it('100 Typical subscriber request', async () => {
    const t = await start(100, 'html');
    await typical(t);
    expect(t.deliveries()[0]!.headers['x-hub-signature']).to.equal(undefined);
  });

  it('101 Subscription with secret', async () => {
    const t = await start(101, 'html');
    await typical(t, { 'hub.secret': randomBytes(15).toString('base64').slice(0, 20) });
    expect(t.deliveries()[0]!.headers['x-hub-signature']).to.be.a('string');
  });

  it('102 Subscriber sends additional parameters', async () => {
    const t = await start(102, 'html');
    await typical(t, { foo: 'bar', 'hub.foo': 'hub.bar' });
  });

  it('103 Subscriber re-subscribes before the subscription expires', async () => {
    const t = await start(103, 'html');
    await typical(t);
    await t.subscribe();
    await t.waitVerification(2, 'subscribe');
    await t.createPost();
    await t.expectDeliveries(2);
    await settled(hub);
    await sleep(500);
    expect(t.deliveries(), 'the hub created a second subscription').to.have.length(2);
  });

  it('104 Unsubscribe', async () => {
    const t = await start(104, 'html');
    await typical(t);
    await t.unsubscribe();
    await t.waitVerification(1, 'unsubscribe');
    await t.createPost();
    await settled(hub);
    await sleep(1500);
    expect(t.deliveries(), 'a delivery arrived after unsubscribing').to.have.length(1);
  });

  it('105 Plaintext content', async () => {
    const t = await start(105, 'text');
    await typical(t);
    expect(t.deliveries()[0]!.headers['content-type']).to.equal('text/plain');
  });

  it('106 JSON content', async () => {
    const t = await start(106, 'json');
    await typical(t);
    expect(t.deliveries()[0]!.headers['content-type']).to.equal('application/json');
    expect(JSON.parse(t.deliveries()[0]!.body.toString('utf8'))).to.have.property('items').with.length(4);
  });

  // A user may enter the hub as its bare root (a feed's rel=hub of https://hub.example/): every
  // delivery's rel=hub must then be that URL, not PUBLIC_URL/websub, or 100-106 fail.
  it('100 Typical subscriber request, the hub entered as its bare root', async () => {
    const t = await start(100, 'html', '/');
    await typical(t);
  });

  it('101 Subscription with secret, the hub entered as its bare root', async () => {
    const t = await start(101, 'html', '/');
    await typical(t, { 'hub.secret': randomBytes(15).toString('base64').slice(0, 20) });
    expect(t.deliveries()[0]!.headers['x-hub-signature']).to.be.a('string');
  });
});
