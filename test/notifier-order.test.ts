// Unit test of the notifier's order across a resume (one part, so a stand-in HTTP client): an
// older version that becomes this process's while a newer one of the same subscription is
// under way goes first. Sent after the newer one, it would count as not due once that one is
// recorded, and its entries would never reach the subscriber. The end-to-end case (a ping
// served while a restarted hub resumes) is in delivery.test.ts; this one opens the narrowest
// window, a resume that completes during the newer version's read of its subscription.
import { expect } from 'chai';
import { rm } from 'node:fs/promises';
import { loadConfig } from '../lib/config.js';
import type { HttpClient, HttpRequest, HttpResponse } from '../lib/http.js';
import { silentLogger } from '../lib/log.js';
import { newSubscription, newTopic } from '../lib/model.js';
import { Notifier } from '../lib/notifier/notifier.js';
import { LowdbStore } from '../lib/store/lowdb-store.js';
import { tempDataDir } from './helpers/hub.js';
import { sleep } from './helpers/recorder.js';

describe('notifier: an older version resumed while a newer one is under way', () => {
  it('is sent first, then the newer one: each once, in order', async () => {
    const dir = await tempDataDir();
    const store = new LowdbStore({ dir });
    await store.open();
    const topic = 'http://t.example/feed';
    const callback = 'http://cb.example/x';
    await store.putTopic({ ...newTopic(topic), version: 1 });
    await store.putSubscription({ ...newSubscription(topic, callback, 'websub', 0, Date.now() + 3600_000), deliveredVersion: 0 });
    // Version 1, owed by a process that stopped: in the outbox, not yet this notifier's.
    await store.putOutbox({ topic, version: 1, contentType: 'text/plain', createdAt: 1 }, Buffer.from('version 1'));
    const sent: string[] = [];
    const ok: HttpResponse = { status: 200, headers: {}, body: Buffer.alloc(0), url: callback };
    const http = {
      request: async (_kind: string, _url: string, opts: HttpRequest) => {
        sent.push(String(opts.body));
        return ok;
      },
    } as unknown as HttpClient;
    const notifier = new Notifier({ config: loadConfig({}), http, store, log: silentLogger });
    const read = store.getSubscription.bind(store);
    let resumeDuringRead = false;
    store.getSubscription = async (t, c) => {
      if (resumeDuringRead) {
        resumeDuringRead = false;
        await notifier.resume();
      }
      return read(t, c);
    };
    try {
      const start = await notifier.stage({ topic, version: 2, body: Buffer.from('version 2'), contentType: 'text/plain' }, () =>
        store.putTopic({ ...newTopic(topic), version: 2 }),
      );
      await sleep(20); // the outbox read made at staging has settled
      resumeDuringRead = true;
      await start();
      for (let i = 0; i < 100 && sent.length < 2; i++) await sleep(20);
      await sleep(100);
      expect(sent).to.deep.equal(['version 1', 'version 2']);
    } finally {
      notifier.close();
      await notifier.drained();
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
