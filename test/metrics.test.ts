// Unit test of the metrics registry's store gauges (one part, so a stand-in store).
import { expect } from 'chai';
import { Metrics } from '../lib/metrics.js';
import type { Store, StoreCounts } from '../lib/store/store.js';

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
    const metrics = new Metrics({ store, queueDepth: () => 0, outboxBytes: () => 0, pausedHosts: () => 0, sseClients: () => 0, pollLagSeconds: () => 0 });
    const text = await metrics.registry.metrics();
    expect(reads).to.equal(1);
    expect(text).to.include('pushbutton_topics 7');
    expect(text).to.include('pushbutton_subscriptions{protocol="http-post"} 2');
    expect(text).to.include('pushbutton_subscriptions{protocol="websub"} 1');
    expect(text).to.include('pushbutton_subscriptions{protocol="xml-rpc"} 0');
    await metrics.registry.metrics();
    expect(reads).to.equal(2);
  });
});
