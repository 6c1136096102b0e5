// WEBSUB_VERIFY_CONCURRENCY: a flood of subscribe requests naming slow callbacks sends at most
// that many verifications of intent at once; the others wait their turn and are verified after.
import { expect } from 'chai';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { rm } from 'node:fs/promises';
import { startTestHub, type TestHub } from './helpers/hub.js';

/** A subscriber whose callbacks answer verifications only once `answerAll` is called. */
class SlowCallbacks {
  peak = 0;
  inFlight = 0;
  readonly verified: string[] = [];
  private held: (() => void)[] = [];
  private answering = false;
  private waiters: (() => void)[] = [];
  readonly server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    this.inFlight++;
    this.peak = Math.max(this.peak, this.inFlight);
    res.on('close', () => this.inFlight--);
    const answer = (): void => {
      this.verified.push(url.pathname);
      res.end(url.searchParams.get('hub.challenge') ?? '');
      for (const w of this.waiters.splice(0)) w();
    };
    if (this.answering) setImmediate(answer);
    else this.held.push(answer);
    for (const w of this.waiters.splice(0)) w();
  });

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
  }

  callback(name: string): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/${name}`;
  }

  get heldCount(): number {
    return this.held.length;
  }

  async holding(n: number): Promise<void> {
    while (this.held.length < n) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  async verifiedCount(n: number): Promise<void> {
    while (this.verified.length < n) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  answerAll(): void {
    this.answering = true;
    for (const a of this.held.splice(0)) setImmediate(a);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

describe('WEBSUB_VERIFY_CONCURRENCY', function () {
  let hub: TestHub | undefined;
  const subscriber = new SlowCallbacks();

  before(() => subscriber.start());
  after(() => subscriber.close());
  afterEach(async () => {
    await hub?.destroy();
    hub = undefined;
  });

  it('sends at most that many verifications at once, and the rest in turn', async () => {
    hub = await startTestHub({ WEBSUB_VERIFY_CONCURRENCY: '2' });
    const names = Array.from({ length: 6 }, (_, i) => `cb-${i}`);
    const replies = await Promise.all(
      names.map((name) =>
        hub!.postForm('/websub', { 'hub.mode': 'subscribe', 'hub.topic': `http://127.0.0.1:9/topic-${name}.xml`, 'hub.callback': subscriber.callback(name) }),
      ),
    );
    expect(replies.map((r) => r.status)).to.deep.equal(names.map(() => 202));
    // Every request is accepted and two verifications are held: no third may go out. A request
    // to the hub round-trips through its event loop, by which time a verification it had
    // started would have reached the subscriber (without the bound, more are held here).
    await subscriber.holding(2);
    expect((await fetch(`${hub.url}/healthz`)).status).to.equal(200);
    expect(subscriber.heldCount, 'verifications sent while two were unanswered').to.equal(2);
    subscriber.answerAll();
    await subscriber.verifiedCount(names.length);
    expect([...subscriber.verified].sort()).to.deep.equal(names.map((n) => `/${n}`).sort());
    expect(subscriber.peak).to.equal(2);
  });

  it('stops without asking the callbacks still waiting their turn, and asks them after the restart', async () => {
    const slow = new SlowCallbacks();
    await slow.start();
    const first = await startTestHub({ WEBSUB_VERIFY_CONCURRENCY: '1' });
    const dir = first.dataDir;
    try {
      const names = ['a', 'b', 'c'];
      for (const name of names) {
        const reply = await first.postForm('/websub', { 'hub.mode': 'subscribe', 'hub.topic': `http://127.0.0.1:9/topic-${name}.xml`, 'hub.callback': slow.callback(name) });
        expect(reply.status).to.equal(202);
      }
      await slow.holding(1);
      // Stopping, with one verification in flight and two waiting: the one in flight is
      // answered; the two waiting must not go out now (one after another, each could take a
      // request timeout), but stay stored for the next start.
      // The answer comes once the hub has begun to stop (before, the next would rightly be asked).
      const stopHub = first.hub.close.bind(first.hub);
      first.hub.close = () => {
        stopHub();
        slow.answerAll();
      };
      await first.close();
      expect(slow.verified, 'asked while the hub stopped').to.deep.equal(['/a']);
      hub = await startTestHub({ WEBSUB_VERIFY_CONCURRENCY: '1' }, dir);
      await slow.verifiedCount(3);
      expect([...slow.verified].sort()).to.deep.equal(['/a', '/b', '/c']);
    } finally {
      await first.close();
      await slow.close();
      if (!hub) await rm(dir, { recursive: true, force: true });
    }
  });
});
