// A hub of today's build started on a data directory an older build wrote: every record in the
// forms older builds wrote it is read, none taken for damage or applied wrong.
import { expect } from 'chai';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startTestHub, tempDataDir, type TestHub } from './helpers/hub.js';
import { sleep } from './helpers/recorder.js';
import { publish, settled, subscribe, Subscriber, subscriptionsOf, TopicServer } from './helpers/websub.js';

/** A small RSS 2.0 feed whose entries are named by `ids` (newest first). */
function rss(ids: string[]): string {
  const items = ids.map((id) => `<item><title>Entry ${id}</title><guid isPermaLink="false">${id}</guid><description>Text of ${id}.</description></item>`);
  return `<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel><title>Upgrade</title><link>http://example.com/</link><description>d</description>${items.join('')}</channel></rss>\n`;
}

const guids = (body: Buffer): string[] => [...body.toString().matchAll(/<guid[^>]*>([^<]*)<\/guid>/g)].map((m) => m[1]!);

/**
 * Rewrites the journal's subStats lines as builds of f07fa0b wrote them: one line per delivery
 * tally, `{ op, topic, callback, stats }`, the stats by name. Returns how many it wrote.
 */
async function asF07fa0bJournal(dir: string): Promise<number> {
  let written = 0;
  for (const name of (await readdir(dir)).filter((f) => /^journal-\d+\.ndjson$/.test(f))) {
    const file = path.join(dir, name);
    const lines = (await readFile(file, 'utf8')).split('\n').flatMap((line) => {
      if (!line.startsWith('{"op":"subStats"')) return [line];
      const op = JSON.parse(line) as { topic: string; rows: [string, number, number, number, number | null, number | null, number][] };
      return op.rows.map(([callback, ctUpdates, ctErrors, ctConsecutiveErrors, whenLastUpdate, whenLastError, deliveredVersion]) => {
        written++;
        const stats = { ctUpdates, ctErrors, ctConsecutiveErrors, whenLastUpdate, whenLastError, deliveredVersion };
        return JSON.stringify({ op: 'subStats', topic: op.topic, callback, stats });
      });
    });
    await writeFile(file, lines.join('\n'));
  }
  return written;
}

async function until(what: string, done: () => Promise<boolean>): Promise<void> {
  for (const t0 = Date.now(); !(await done()); await sleep(20)) if (Date.now() - t0 > 10_000) throw new Error(`timed out waiting for ${what}`);
}

describe('a data directory written by an older build', function () {
  this.timeout(30_000);
  let topics: TopicServer;
  let had: Subscriber;
  let owed: Subscriber;
  let dir: string;
  let hub: TestHub | undefined;

  before(async () => {
    topics = await TopicServer.start();
    had = await Subscriber.start();
    owed = await Subscriber.start();
  });
  after(async () => {
    await Promise.all([topics.close(), had.close(), owed.close()]);
  });
  beforeEach(async () => {
    dir = await tempDataDir();
  });
  afterEach(async () => {
    await hub?.close();
    hub = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  it("reads f07fa0b's delivery tallies (a subStats line per subscription): a version owed to one subscriber is not sent again to those that had it", async () => {
    const doc = (ids: string[]) => ({ body: rss(ids), contentType: 'application/rss+xml' });
    const topic = topics.set('/tallies.xml', doc(['one']));
    // A retry far off: the failed delivery is still owed when the hub stops.
    const env = { DATABASE_URL: '', WEBSUB_RETRY_BASE_MS: '600000', WEBSUB_RETRY_MAX_MS: '600000' };
    hub = await startTestHub(env, dir);
    for (const s of [had, owed]) expect((await subscribe(hub, { 'hub.topic': topic, 'hub.callback': s.callback() })).status).to.equal(202);
    await settled(hub);
    expect(await subscriptionsOf(hub, topic)).to.have.length(2);

    topics.set('/tallies.xml', doc(['two', 'one']));
    owed.deliveryStatuses = [500];
    await publish(hub, topic);
    const store = hub.store;
    await until('both outcomes recorded', async () => {
      const [a, b] = await Promise.all([store.getSubscription(topic, had.callback()), store.getSubscription(topic, owed.callback())]);
      return a?.ctUpdates === 1 && b?.ctErrors === 1;
    });
    await hub.close();
    hub = undefined;
    expect(await asF07fa0bJournal(dir), 'subStats lines rewritten').to.be.at.least(2);

    hub = await startTestHub(env, dir);
    await owed.waitDeliveries(2);
    const resumed = hub.store;
    // Every subscriber the version was owed to is handled once its entry is gone.
    await until('the owed version handled', async () => (await resumed.listOutbox()).length === 0);
    const byCallback = new Map((await subscriptionsOf(hub, topic)).map((s) => [s.url, s]));
    expect({
      owedGot: owed.deliveries().map((d) => guids(d.body)),
      hadDeliveries: had.deliveries().length,
      had: byCallback.get(had.callback())?.ctUpdates,
      owed: [byCallback.get(owed.callback())?.ctUpdates, byCallback.get(owed.callback())?.ctErrors],
    }).to.deep.equal({ owedGot: [guids(had.deliveries()[0]!.body), guids(had.deliveries()[0]!.body)], hadDeliveries: 1, had: 1, owed: [1, 1] });
    expect(await readdir(dir), 'nothing taken for damage').to.not.include.members(['damaged-journal-00000001.ndjson']);
  });
});
