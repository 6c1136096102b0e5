// Unit tests of a notifier's lanes (one part, so a stand-in HTTP client that records what would
// be sent): what must not cost a subscriber a version.
//  - An older version that becomes this process's while a newer one of the same subscription
//    is under way goes first. Sent after the newer one, it would count as not due once that one
//    is recorded, and its entries would never reach the subscriber. The end-to-end case (a ping
//    served while a restarted hub resumes) is in delivery.test.ts; this one opens the narrowest
//    window, a resume that completes during the newer version's read of its subscription.
//  - A store read that fails for now (a database connection cut mid fan-out) is tried again.
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
import { until } from './helpers/until.js';

describe('notifier lanes', () => {
  it('an older version resumed while a newer one is under way is sent first, then the newer one: each once, in order', async () => {
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
      await until(() => sent.length >= 2);
      await sleep(100);
      expect(sent).to.deep.equal(['version 1', 'version 2']);
    } finally {
      notifier.close();
      await notifier.drained();
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a store read that fails for now does not cost the subscriber the version: it is tried again and sent', async () => {
    const dir = await tempDataDir();
    const store = new LowdbStore({ dir });
    await store.open();
    const topic = 'http://t.example/feed';
    const callbacks = ['http://cb.example/a', 'http://cb.example/b'];
    await store.putTopic({ ...newTopic(topic), version: 0 });
    for (const cb of callbacks) await store.putSubscription({ ...newSubscription(topic, cb, 'websub', 0, Date.now() + 3600_000), deliveredVersion: 0 });
    const sent: string[] = [];
    const http = {
      request: async (_kind: string, url: string | URL) => {
        sent.push(String(url));
        return { status: 200, headers: {}, body: Buffer.alloc(0), url: String(url) } satisfies HttpResponse;
      },
    } as unknown as HttpClient;
    const notifier = new Notifier({ config: loadConfig({}), http, store, log: silentLogger });
    // The lane of /b reads its subscription over a connection that is cut, once.
    const read = store.getSubscription.bind(store);
    let cut = true;
    store.getSubscription = async (t, c) => {
      if (cut && c.endsWith('/b')) {
        cut = false;
        throw new Error('write EPIPE');
      }
      return read(t, c);
    };
    try {
      const start = await notifier.stage({ topic, version: 1, body: Buffer.from('version 1'), contentType: 'text/plain' }, () =>
        store.putTopic({ ...newTopic(topic), version: 1 }),
      );
      await start();
      await until(() => sent.length >= 2);
      expect(sent.sort()).to.deep.equal(callbacks);
      // Recorded after the answer, in the outcomes' next batch: on a busy machine, after the check above.
      const delivered = async (): Promise<number | undefined> => (await store.getSubscription(topic, callbacks[1]!))?.deliveredVersion;
      await until(async () => (await delivered()) === 1);
      expect(await delivered(), 'recorded as delivered').to.equal(1);
    } finally {
      notifier.close();
      await notifier.drained();
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
