// Unit tests of the metrics registry (one part, so a stand-in store), and of its documentation.
import { readFile } from 'node:fs/promises';
import { expect } from 'chai';
import { Metrics, storeWaitMs, type MetricsSources } from '../lib/metrics.js';
import type { Store, StoreCounts } from '../lib/store/store.js';

/** Sources of a hub doing nothing, but for `store`. */
function idleSources(store: Store): MetricsSources {
  const none = { worker: 0, main: 0 };
  return { store, queueDepth: () => 0, lingering: () => 0, outboxBytes: () => 0, pausedHosts: () => 0, sseClients: () => 0, pollLagSeconds: () => 0, bodyWork: () => ({ diff: none, sign: none }) };
}

describe('metrics', () => {
  it('reads the store counts once per scrape for both store gauges, and again on the next scrape', async () => {
    let reads = 0;
    const store = {
      counts: async (): Promise<StoreCounts> => {
        reads++;
        await new Promise((resolve) => setTimeout(resolve, 5));
        return { topics: 7, subscriptions: 3, byProtocol: { 'http-post': 2, websub: 1 } };
      },
    } as unknown as Store;
    const metrics = new Metrics(idleSources(store));
    const text = await metrics.exposition();
    expect(reads).to.equal(1);
    expect(text).to.include('pushbutton_topics 7');
    expect(text).to.include('pushbutton_subscriptions{protocol="http-post"} 2');
    expect(text).to.include('pushbutton_subscriptions{protocol="websub"} 1');
    expect(text).to.include('pushbutton_subscriptions{protocol="xml-rpc"} 0');
    await metrics.exposition();
    expect(reads).to.equal(2);
  });

  it('shares one unanswered count between scrapes that gave up on it, and reads again once it is answered', async () => {
    let reads = 0;
    let answer: (c: StoreCounts) => void = () => {};
    const store = {
      counts: (): Promise<StoreCounts> => {
        reads++;
        // The first read is a silent database's; the next ones answer at once.
        if (reads === 1) return new Promise((resolve) => (answer = resolve));
        return Promise.resolve({ topics: 9, subscriptions: 1, byProtocol: { websub: 1 } });
      },
    } as unknown as Store;
    const metrics = new Metrics(idleSources(store));
    // Scrapes with a 20 ms scrape_timeout, two at once and one after: each waits 10 ms.
    const given = await Promise.all([metrics.exposition('0.02'), metrics.exposition('0.02')]);
    given.push(await metrics.exposition('0.02'));
    for (const text of given) expect(text).to.match(/^pushbutton_store_up 0$/m);
    expect(reads, 'one query at a time on a database that does not answer').to.equal(1);
    answer({ topics: 4, subscriptions: 0, byProtocol: {} });
    // The scrape that finds it answered takes it; the one after reads afresh.
    const after = await metrics.exposition('0.02');
    expect(after).to.match(/^pushbutton_store_up 1$/m);
    expect(after).to.match(/^pushbutton_topics 4$/m);
    expect(reads).to.equal(1);
    expect(await metrics.exposition('0.02')).to.match(/^pushbutton_topics 9$/m);
    expect(reads).to.equal(2);
  });

  it('leaves no timer behind once a scrape is answered, however long it would have waited for the store', async () => {
    const store = { counts: async (): Promise<StoreCounts> => ({ topics: 1, subscriptions: 0, byProtocol: {} }) } as unknown as Store;
    const metrics = new Metrics(idleSources(store));
    const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    // After a first scrape: the test runner sets its own timer once the test has begun.
    await metrics.exposition('120');
    const before = timers();
    // Up to a minute each: left set, they held a hub that was told to stop, and piled up under a busy scraper.
    for (let i = 0; i < 3; i++) expect(await metrics.exposition('120')).to.match(/^pushbutton_store_up 1$/m);
    expect(timers()).to.equal(before);
  });

  it('every pushbutton_ metric it serves is in the README\'s metrics table', async () => {
    const store = { counts: async (): Promise<StoreCounts> => ({ topics: 0, subscriptions: 0, byProtocol: {} }) } as unknown as Store;
    const metrics = new Metrics(idleSources(store));
    const served = (await metrics.registry.getMetricsAsJSON()).map((m) => m.name).filter((n) => n.startsWith('pushbutton_'));
    const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
    // The first cell of each table row that names a metric.
    const cells = readme.split('\n').filter((l) => l.startsWith('| `pushbutton_')).map((l) => l.split('|')[1] ?? '');
    const documented = new Set(cells.flatMap((c) => [...c.matchAll(/`(pushbutton_[a-z_]+)/g)].map((m) => m[1])));
    expect(served.length).to.be.above(10);
    expect(served.filter((n) => !documented.has(n))).to.deep.equal([]);
  });

  it('every pushbutton_ metric it serves is named on the docs page (/docs)', async () => {
    const store = { counts: async (): Promise<StoreCounts> => ({ topics: 0, subscriptions: 0, byProtocol: {} }) } as unknown as Store;
    const metrics = new Metrics(idleSources(store));
    const served = (await metrics.registry.getMetricsAsJSON()).map((m) => m.name).filter((n) => n.startsWith('pushbutton_'));
    const page = await readFile(new URL('../public/docs.html', import.meta.url), 'utf8');
    const named = new Set([...page.matchAll(/<code>(pushbutton_[a-z_]+)/g)].map((m) => m[1]));
    expect(served.length).to.be.above(10);
    expect(served.filter((n) => !named.has(n))).to.deep.equal([]);
  });

  it('waits for the store half the scrape timeout Prometheus names, within bounds whatever the header says', () => {
    expect(storeWaitMs('10')).to.equal(5000);
    expect(storeWaitMs('0.5')).to.equal(250);
    // Not sent (curl), or not a duration: half Prometheus's default scrape_timeout.
    for (const h of [undefined, '', 'abc', '-3', '0', 'Infinity']) expect(storeWaitMs(h)).to.equal(5000);
    // A timer Node can set: past 2^31 ms it would fire at once.
    expect(storeWaitMs('1e12')).to.equal(60_000);
  });
});
