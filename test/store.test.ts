// The store contract (test/helpers/store-contract.ts) run against both stores: the embedded
// lowdb store and PostgreSQL (a throwaway server, or DATABASE_URL: test/helpers/postgres.ts).
// Then the embedded store's own durability promises: group commit, sharded compaction, replay
// after a crash, torn journal lines, outbox bodies on disk.
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { appendFile, cp, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { newTopic, type Subscription } from '../lib/model.js';
import { DataDirInUseError } from '../lib/store/dir-lock.js';
import { INLINE_BODY_MAX, LowdbStore } from '../lib/store/lowdb-store.js';
import { jsonInSlices } from '../lib/store/snapshot-file.js';
import { PgStore } from '../lib/store/pg-store.js';
import { spawnHub, type ChildHub } from './helpers/child-hub.js';
import { startTestHub } from './helpers/hub.js';
import { dropDatabaseSchema, freshDatabaseUrl } from './helpers/postgres.js';
import { freePort, loopbackAddress } from './helpers/recorder.js';
import { FeedServer, getSubscriptions, ping, setSubscriptions, testApi, type ResourceJson } from './helpers/rsscloud.js';
import { describeStoreContract, expectCountsConsistent, fullState, outbox, randomOps, sub, verification } from './helpers/store-contract.js';
import { until } from './helpers/until.js';

const tempDir = (): Promise<string> => mkdtemp(path.join(os.tmpdir(), 'pushbutton-store-'));

async function journalFiles(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((f) => /^journal-\d+\.ndjson$/.test(f)).sort();
}

async function journalText(dir: string): Promise<string> {
  let text = '';
  for (const f of await journalFiles(dir)) text += await readFile(path.join(dir, f), 'utf8');
  return text;
}

async function shardFiles(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((f) => /^snapshot-\d\d\.json$/.test(f)).sort();
}

async function shardSubscriptions(dir: string): Promise<number> {
  let n = 0;
  for (const f of await shardFiles(dir)) {
    n += (JSON.parse(await readFile(path.join(dir, f), 'utf8')) as { subscriptions: unknown[] }).subscriptions.length;
  }
  return n;
}

/** A body one byte too large to travel in its journal line, so it goes to content/; starts with `head`. */
function big(head: string | number[]): Buffer {
  const b = Buffer.alloc(INLINE_BODY_MAX + 1, 0x2e);
  b.set(typeof head === 'string' ? Buffer.from(head) : head);
  return b;
}

function contentPath(dir: string, topic: string, version: number): string {
  return path.join(dir, 'content', `${createHash('sha256').update(topic).digest('hex').slice(0, 16)}-${version}.bin`);
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

describeStoreContract('lowdb', async () => {
  const dir = await tempDir();
  return {
    open: async () => {
      const store = new LowdbStore({ dir });
      await store.open();
      return store;
    },
    destroy: () => rm(dir, { recursive: true, force: true }),
  };
});

describeStoreContract('postgresql', async () => {
  const url = await freshDatabaseUrl('contract');
  return {
    open: async () => {
      const store = new PgStore({ connectionString: url, poolSize: 4 });
      await store.open();
      return store;
    },
    destroy: () => dropDatabaseSchema(url),
  };
});

describe('lowdb store: durability', () => {
  let dir: string;
  let store: LowdbStore;
  const reopen = async (opts: { compactAfterBytes?: number } = {}): Promise<LowdbStore> => {
    await store.close();
    store = new LowdbStore({ dir, ...opts });
    await store.open();
    return store;
  };

  beforeEach(async () => {
    dir = await tempDir();
    store = new LowdbStore({ dir });
    await store.open();
  });
  afterEach(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('removes the outbox bodies it dropped on clear', async () => {
    await store.putOutbox(outbox('http://c/feed', 1), big('x'));
    expect(await exists(contentPath(dir, 'http://c/feed', 1))).to.equal(true);
    await store.clear();
    expect(await exists(contentPath(dir, 'http://c/feed', 1))).to.equal(false);
  });

  it('shares one journal append among writes that arrive together (group commit)', async () => {
    const before = store.stats().journal.batches;
    await Promise.all(Array.from({ length: 50 }, (_, i) => store.putSubscription(sub('http://a/feed', `http://s/${i}`))));
    expect(store.stats().journal.batches - before).to.equal(1);
    expect((await journalText(dir)).trim().split('\n')).to.have.length(50);
    // Each write is durable on its own line; nothing rewrote a snapshot shard per request.
    expect(await shardSubscriptions(dir)).to.equal(0);
  });

  it('ignores a torn last journal line left by a crash mid-append', async () => {
    await store.putSubscription(sub('http://a/feed', 'http://s/1'));
    await store.flush();
    const [segment] = await journalFiles(dir);
    await appendFile(path.join(dir, segment!), '{"op":"putSub","sub":{"topic":"http://a/fe');
    await reopen();
    expect(await store.subscriptionsOf('http://a/feed')).to.have.length(1);
    expect(store.stats().open.linesDiscarded).to.equal(1);
    // Appends after the restart go to a fresh segment, never behind the torn line.
    await store.putSubscription(sub('http://a/feed', 'http://s/2'));
    await reopen();
    expect(await store.subscriptionsOf('http://a/feed')).to.have.length(2);
  });

  it('replays a later segment after an older one that ends in a torn tail', async () => {
    await store.close();
    const line = (s: Subscription): string => JSON.stringify({ op: 'putSub', sub: s }) + '\n';
    // Unsynced pages of the batch a crash cut: whole lines after the torn one were no more
    // acknowledged than it, so applying them is as right as not.
    await writeFile(path.join(dir, 'journal-00000005.ndjson'), line(sub('http://a/feed', 'http://s/1')) + '{"op":"putS\0\0\n' + line(sub('http://a/feed', 'http://s/x')));
    await writeFile(path.join(dir, 'journal-00000006.ndjson'), line(sub('http://a/feed', 'http://s/2')));
    store = new LowdbStore({ dir });
    await store.open();
    expect((await store.subscriptionsOf('http://a/feed')).map((s) => s.callback).sort()).to.deep.equal(['http://s/1', 'http://s/2', 'http://s/x']);
    expect(store.stats().open.linesDiscarded).to.equal(1);
    expect(await journalFiles(dir)).to.deep.equal([]);
  });

  it("journals a check that found the same entries without the topic's fingerprints", async () => {
    // A big feed's topic: its remembered entries are most of its record.
    const fingerprints = Array.from({ length: 300 }, (_, i) => `fingerprint-of-entry-${i}`);
    const t = { ...newTopic('http://a/big-feed'), lastHash: 'h', version: 1, fingerprints };
    await store.putTopic(t);
    for (let i = 1; i <= 20; i++) await store.recordCheck({ ...t, ctChecks: i, whenLastCheck: i * 1000 });
    // Entries that moved: that check carries its list, whole.
    await store.recordCheck({ ...t, ctChecks: 21, whenLastCheck: 21_000, fingerprints: fingerprints.slice(1) });
    await store.flush();
    const lines = (await journalText(dir)).trim().split('\n').map((l) => JSON.parse(l) as { op: string; topic: { fingerprints?: string[] } });
    expect(lines.map((l) => [l.op, l.topic.fingerprints?.length])).to.deep.equal([['putTopic', 300], ...Array.from({ length: 20 }, () => ['checkTopic', undefined]), ['putTopic', 299]]);
    await reopen();
    expect(await store.getTopic(t.url)).to.deep.equal({ ...t, ctChecks: 21, whenLastCheck: 21_000, fingerprints: fingerprints.slice(1) });
  });

  it('compacts the journal into the snapshot shards once it grows past the threshold', async () => {
    await reopen({ compactAfterBytes: 2000 });
    for (let i = 0; i < 40; i++) await store.putSubscription(sub(`http://a/feed${i % 7}`, `http://s/${i}`));
    await store.settle();
    expect(store.stats().compactions).to.be.greaterThan(1);
    let journalBytes = 0;
    for (const f of await journalFiles(dir)) journalBytes += (await stat(path.join(dir, f))).size;
    expect(journalBytes).to.be.lessThan(4000);
    expect(await shardSubscriptions(dir)).to.be.greaterThan(0);
    expect((await shardFiles(dir)).length).to.be.within(1, 7);
    await reopen();
    for (let t = 0; t < 7; t++) expect(await store.subscriptionsOf(`http://a/feed${t}`)).to.have.length(t < 5 ? 6 : 5);
  });

  describe('one process at a time on a directory', function () {
    this.timeout(60_000);

    it('a second store on the directory is refused while the first is open, and opens once it is closed', async () => {
      await store.putSubscription(sub('http://a/feed', 'http://s/1'));
      const second = new LowdbStore({ dir });
      let refused: unknown;
      await second.open().catch((e: unknown) => (refused = e));
      expect(refused).to.be.instanceOf(DataDirInUseError);
      expect((refused as Error).message).to.include(`in use by another process (pid ${process.pid})`);
      await store.putSubscription(sub('http://a/feed', 'http://s/2'));
      await reopen();
      expect((await store.listSubscriptions()).map((s) => s.callback).sort()).to.deep.equal(['http://s/1', 'http://s/2']);
    });

    it('a hub started in-process on the directory fails to start, and leaves nothing listening', async () => {
      const host = loopbackAddress();
      const port = await freePort(host);
      const failed = await startTestHub({ DATABASE_URL: '', HOST: host, PORT: String(port) }, dir).then(
        async (h) => (await h.close(), 'it started'),
        (e: unknown) => e,
      );
      expect(failed).to.be.instanceOf(DataDirInUseError);
      const after = await fetch(`http://${host}:${port}/healthz`, { signal: AbortSignal.timeout(3000) }).then(
        (r) => `answered ${r.status}`,
        (e: unknown) => (e instanceof Error && e.name === 'TimeoutError' ? 'no answer in 3 s' : ((e as Error).cause as { code?: string } | undefined)?.code),
      );
      expect(after, 'nothing listens where it began to').to.equal('ECONNREFUSED');
    });

    it('a second hub process on the same DATA_DIR exits at start-up naming the first, which keeps every subscription; after a SIGKILL the next one starts', async () => {
      await store.close();
      // The embedded store whatever the run: PostgreSQL keeps no DATA_DIR.
      const env = { DATABASE_URL: '' };
      const hubs: ChildHub[] = [];
      try {
        const first = await spawnHub(dir, env);
        hubs.push(first);
        const feed = 'http://127.0.0.1:9/feed.xml';
        await setSubscriptions(first, feed, [{ url: 'http://127.0.0.1:9/one', protocol: 'http-post' }]);
        const refused = await spawnHub(dir, env).then(
          (h) => (hubs.push(h), 'it started'),
          (e: unknown) => String(e),
        );
        expect(refused).to.include('(code 1,');
        expect(refused).to.include(`${dir} is in use by another process (pid ${first.proc.pid})`);
        await setSubscriptions(first, feed, [
          { url: 'http://127.0.0.1:9/one', protocol: 'http-post' },
          { url: 'http://127.0.0.1:9/two', protocol: 'http-post' },
        ]);
        expect((await first.stop('SIGKILL')).signal).to.equal('SIGKILL');
        const next = await spawnHub(dir, env);
        hubs.push(next);
        expect((await getSubscriptions(next, feed)).map((s) => s.url).sort()).to.deep.equal(['http://127.0.0.1:9/one', 'http://127.0.0.1:9/two']);
      } finally {
        for (const h of hubs) await h.stop('SIGKILL');
        store = new LowdbStore({ dir });
        await store.open();
      }
    });
  });

  describe('outbox', () => {
    it('writes a body over INLINE_BODY_MAX to content/ before the entry, reads it back, and keeps both across a reopen', async () => {
      const body = big([0, 1, 2, 250, 255]);
      await store.putOutbox(outbox('https://a.example/feed', 7), body);
      const file = contentPath(dir, 'https://a.example/feed', 7);
      expect(await readFile(file)).to.deep.equal(body);
      expect(await store.getOutboxBody('https://a.example/feed', 7)).to.deep.equal(body);
      expect(await store.getOutboxBody('https://a.example/feed', 8)).to.equal(undefined);
      await reopen();
      expect(await store.listOutbox()).to.deep.equal([outbox('https://a.example/feed', 7)]);
      expect(await store.getOutboxBody('https://a.example/feed', 7)).to.deep.equal(body);
      await store.compact();
      await reopen();
      expect(await store.getOutboxBody('https://a.example/feed', 7)).to.deep.equal(body);
    });

    it('removes the entry and its file on delete', async () => {
      await store.putOutbox(outbox('https://a.example/feed', 1), big('one'));
      await store.putOutbox(outbox('https://a.example/feed', 2), big('two'));
      expect(await exists(contentPath(dir, 'https://a.example/feed', 1))).to.equal(true);
      await store.deleteOutbox('https://a.example/feed', 1);
      await store.deleteOutbox('https://a.example/feed', 9); // absent: no-op
      expect(await exists(contentPath(dir, 'https://a.example/feed', 1))).to.equal(false);
      expect(await store.getOutboxBody('https://a.example/feed', 1)).to.equal(undefined);
      expect((await store.listOutbox()).map((e) => e.version)).to.deep.equal([2]);
      await reopen();
      expect((await store.listOutbox()).map((e) => e.version)).to.deep.equal([2]);
      expect(await store.getOutboxBody('https://a.example/feed', 2)).to.deep.equal(big('two'));
    });

    it('keeps a body of INLINE_BODY_MAX or less in its entry: no file, one journal line, read back across reopen, compaction and delete', async () => {
      const small = Buffer.alloc(INLINE_BODY_MAX, 0xfe);
      small[0] = 0;
      await store.putOutbox(outbox('https://a.example/feed', 1), small);
      await store.putOutbox(outbox('https://a.example/feed', 2), Buffer.from('<rss/>'));
      expect(await readdir(path.join(dir, 'content'))).to.deep.equal([]);
      expect(await store.getOutboxBody('https://a.example/feed', 1)).to.deep.equal(small);
      // Entries never show the body: it is read with getOutboxBody only.
      expect(await store.listOutbox()).to.deep.equal([outbox('https://a.example/feed', 1), outbox('https://a.example/feed', 2)]);
      await reopen(); // from the journal
      expect(await store.getOutboxBody('https://a.example/feed', 1)).to.deep.equal(small);
      expect((await store.getOutboxBody('https://a.example/feed', 2))?.toString()).to.equal('<rss/>');
      await store.compact();
      await reopen(); // from the snapshot
      expect(await store.listOutbox()).to.deep.equal([outbox('https://a.example/feed', 1), outbox('https://a.example/feed', 2)]);
      expect(await store.getOutboxBody('https://a.example/feed', 1)).to.deep.equal(small);
      await store.deleteOutbox('https://a.example/feed', 1);
      expect(await store.getOutboxBody('https://a.example/feed', 1)).to.equal(undefined);
      // The same version put again with a body too large for its entry reads from its file.
      await store.putOutbox(outbox('https://a.example/feed', 2), big('file'));
      expect(await store.getOutboxBody('https://a.example/feed', 2)).to.deep.equal(big('file'));
      await store.compact();
      await reopen();
      expect(await store.getOutboxBody('https://a.example/feed', 2)).to.deep.equal(big('file'));
      expect(await store.getOutboxBody('https://a.example/feed', 1)).to.equal(undefined);
    });

    it('does not journal an entry whose body could not be written', async () => {
      await rm(path.join(dir, 'content'), { recursive: true });
      await writeFile(path.join(dir, 'content'), 'not a directory');
      let failed = false;
      await store.putOutbox(outbox('https://a.example/feed', 1), big('x')).catch(() => (failed = true));
      expect(failed).to.equal(true);
      expect(await store.listOutbox()).to.deep.equal([]);
      await store.flush();
      expect(await journalText(dir)).not.to.contain('putOutbox');
    });

    it('keeps no claim for an entry whose body could not be written: the same version written later is unclaimed', async () => {
      await rm(path.join(dir, 'content'), { recursive: true });
      await writeFile(path.join(dir, 'content'), 'not a directory');
      const claimed = { ...outbox('https://a.example/feed', 1), claimedBy: 'this process', claimedUntil: Date.now() + 60_000 };
      let failed = false;
      await store.putOutbox(claimed, big('x')).catch(() => (failed = true));
      expect(failed).to.equal(true);
      await rm(path.join(dir, 'content'));
      await mkdir(path.join(dir, 'content'));
      await store.putOutbox(outbox('https://a.example/feed', 1), big('y'));
      expect(await store.outboxOf('https://a.example/feed')).to.deep.equal([outbox('https://a.example/feed', 1)]);
    });

    it('removes orphan content files (and interrupted temp files) at open', async () => {
      await store.putOutbox(outbox('https://a.example/feed', 1), big('kept'));
      await store.close();
      const orphan = contentPath(dir, 'https://a.example/feed', 2);
      const temp = path.join(dir, 'content', `.${path.basename(contentPath(dir, 'https://b.example/feed', 1))}.tmp`);
      const foreign = path.join(dir, 'content', 'README');
      await writeFile(orphan, 'written, entry never journaled');
      await writeFile(temp, 'half');
      await writeFile(foreign, 'not ours');
      store = new LowdbStore({ dir });
      await store.open();
      expect(store.stats().open.orphansRemoved).to.equal(2);
      expect(await exists(orphan)).to.equal(false);
      expect(await exists(temp)).to.equal(false);
      expect(await exists(foreign)).to.equal(true);
      expect(await store.getOutboxBody('https://a.example/feed', 1)).to.deep.equal(big('kept'));
    });
  });

  describe('pending verifications', () => {
    it('puts, lists, deletes, and keeps them (secrets included) in DATA_DIR files only the hub can read', async () => {
      // Each of its own (topic, callback): a newer request would supersede the others of its pair.
      const v2 = verification('v2', { callback: 'https://s.example/cb2', createdAt: 2, secret: 'hmac-key', leaseSeconds: 3600, verifyToken: 't' });
      await store.putVerification(v2);
      await store.putVerification(verification('v1', { mode: 'unsubscribe' }));
      await store.putVerification(verification('v3', { callback: 'https://s.example/cb3', createdAt: 3 }));
      await store.deleteVerification('v3');
      await store.deleteVerification('nope');
      const expected = [verification('v1', { mode: 'unsubscribe' }), v2];
      expect(await store.listVerifications()).to.deep.equal(expected);
      await store.flush();
      const [segment] = await journalFiles(dir);
      expect((await stat(path.join(dir, segment!))).mode & 0o777).to.equal(0o600);
      await reopen();
      expect(await store.listVerifications()).to.deep.equal(expected);
      const [shard] = await shardFiles(dir);
      expect((await stat(path.join(dir, shard!))).mode & 0o777).to.equal(0o600);
    });
  });

  describe('pending reads', () => {
    it('are one journal batch per publish, folded into their shard by a compaction, and read back from the shard alone', async () => {
      const topics = ['http://a.example/feed', 'http://b.example/feed', 'http://c.example/feed'];
      for (const t of topics) await store.putSubscription(sub(t, 'http://s.example/cb'));
      const batches = store.stats().journal.batches;
      await store.putPendingReads([...topics, 'http://nobody.example/feed'], 7);
      expect(store.stats().journal.batches - batches).to.equal(1);
      expect((await journalText(dir)).match(/"op":"putPendingRead"/g)).to.have.length(3);
      await store.deletePendingRead(topics[2]!, 7);
      const expected = topics.slice(0, 2).map((topic) => ({ topic, since: 7 }));
      await store.compact();
      let inShards = 0;
      for (const f of await shardFiles(dir)) inShards += ((JSON.parse(await readFile(path.join(dir, f), 'utf8')) as { pendingReads?: unknown[] }).pendingReads ?? []).length;
      expect(inShards).to.equal(2);
      await reopen();
      expect(await journalFiles(dir)).to.deep.equal([]);
      expect(await store.listPendingReads()).to.deep.equal(expected);
    });

    it('put or deleted alone, rewrites its shard at the next compaction: kept, then deleted, across reopens', async () => {
      const topic = 'http://a.example/feed';
      await store.putSubscription(sub(topic, 'http://s.example/cb'));
      await store.compact();
      await store.putPendingReads([topic], 7);
      await store.compact();
      await reopen();
      expect(await store.listPendingReads()).to.deep.equal([{ topic, since: 7 }]);
      await store.deletePendingRead(topic, 7);
      await store.compact();
      await reopen();
      // Left in the shard while the journal that deleted it was removed, it came back at every
      // start, and the topic was read again each time.
      expect(await journalFiles(dir)).to.deep.equal([]);
      expect(await store.listPendingReads()).to.deep.equal([]);
    });

    it('a journal line of one without its since is damage: skipped, and the lines after it applied', async () => {
      await store.putSubscription(sub('http://a.example/feed', 'http://s.example/cb'));
      await store.close();
      const [segment] = await journalFiles(dir);
      await appendFile(path.join(dir, segment!), '{"op":"putPendingRead","read":{"topic":"http://a.example/feed"}}\n{"op":"putPendingRead","read":{"topic":"http://a.example/feed","since":3}}\n');
      store = new LowdbStore({ dir });
      await store.open();
      expect(store.stats().open.linesDiscarded).to.equal(1);
      expect(await store.listPendingReads()).to.deep.equal([{ topic: 'http://a.example/feed', since: 3 }]);
    });
  });

  describe('sharded compaction', () => {
    it("writes a shard's JSON a slice of records at a time, byte for byte what JSON.stringify makes of it", async () => {
      const shard = {
        format: 2,
        shard: 7,
        listed: undefined,
        note: () => 'no JSON',
        topics: [{ url: 'http://t.example/\u00e9\u2028\ud800"\\', n: NaN, at: new Date(0), gone: undefined }],
        subscriptions: Array.from({ length: 7 }, (_, i) => ({ callback: `http://cb${i}.example/`, ct: i === 3 ? Infinity : i, secret: i === 5 ? undefined : 's' })),
        outbox: [],
        verifications: [undefined, { id: 'v', toJSON: () => ({ id: 'as JSON' }) }],
        '2': 'an index-like key, which goes first',
      };
      for (const perTurn of [1, 2, 3, 100]) {
        const parts = await jsonInSlices(shard, perTurn);
        expect(Buffer.concat(parts).toString('utf8'), `${perTurn} a turn`).to.equal(JSON.stringify(shard));
      }
      expect(await jsonInSlices(shard, 3)).to.have.length(4);
    });

    it('gives back exactly the same state after random writes, compactions and a reopen', async () => {
      await reopen({ compactAfterBytes: 3000 });
      await randomOps(store, 42, 600, { clear: true });
      await expectCountsConsistent(store);
      const expected = await fullState(store);
      await store.settle();
      expect(store.stats().compactions).to.be.greaterThan(2);
      await reopen();
      expect(await fullState(store)).to.deep.equal(expected);
      await expectCountsConsistent(store);
      // And once more with nothing left to replay: the shards alone hold it.
      expect(await journalFiles(dir)).to.deep.equal([]);
      await reopen();
      expect(await fullState(store)).to.deep.equal(expected);
    });

    it('recovers the right state after a crash at any point of a compaction', async () => {
      await reopen({ compactAfterBytes: 1e9 });
      await randomOps(store, 1, 250);
      await store.compact();
      const shardsBefore = new Map<string, string>();
      for (const f of await shardFiles(dir)) shardsBefore.set(f, await readFile(path.join(dir, f), 'utf8'));
      // Segment 2: updates and deletes (a topic deletion and a clear among them) over the state above.
      await randomOps(store, 2, 250, { clear: true });
      await store.deleteTopic('https://t3.example/feed?id=3');
      await store.flush();
      const oldSegments = new Map<string, string>();
      for (const f of await journalFiles(dir)) oldSegments.set(f, await readFile(path.join(dir, f), 'utf8'));
      expect(oldSegments.size).to.equal(1);
      await store.compact();
      // Writes after the rotation, in the newest segment.
      await randomOps(store, 3, 150);
      const expected = await fullState(store);
      await store.close();
      const crashed = `${dir}-crash`;
      try {
        const allShards = [...new Set([...shardsBefore.keys(), ...(await shardFiles(dir))])].sort();
        // none / some / all of the shards rewritten when the process died; the old segment not yet deleted
        for (const rewritten of [0, Math.floor(allShards.length / 2), allShards.length]) {
          await rm(crashed, { recursive: true, force: true });
          await cp(dir, crashed, { recursive: true });
          for (const [f, text] of oldSegments) await writeFile(path.join(crashed, f), text);
          for (const f of allShards.slice(rewritten)) {
            const old = shardsBefore.get(f);
            if (old === undefined) await rm(path.join(crashed, f));
            else await writeFile(path.join(crashed, f), old);
          }
          await writeFile(path.join(crashed, `.${allShards[0]}.tmp`), '{"format":1,"shard":0,"to'); // a shard write cut short
          const recovered = new LowdbStore({ dir: crashed });
          await recovered.open();
          try {
            expect(await fullState(recovered), `${rewritten} of ${allShards.length} shards rewritten`).to.deep.equal(expected);
            await expectCountsConsistent(recovered);
          } finally {
            await recovered.close();
          }
        }
      } finally {
        await rm(crashed, { recursive: true, force: true });
      }
      store = new LowdbStore({ dir });
      await store.open();
    });

    it('migrates the single snapshot.json and journal.ndjson of the unsharded store', async () => {
      await store.close();
      await writeFile(
        path.join(dir, 'snapshot.json'),
        JSON.stringify({ topics: [newTopic('http://a/feed')], subscriptions: [sub('http://a/feed', 'http://s/1'), sub('http://b/feed', 'http://s/2')] }, null, 2),
      );
      await writeFile(
        path.join(dir, 'journal.ndjson'),
        JSON.stringify({ op: 'putSub', sub: sub('http://c/feed', 'http://s/3') }) + '\n' + JSON.stringify({ op: 'delSub', topic: 'http://a/feed', callback: 'http://s/1' }) + '\n{"op":"put',
      );
      store = new LowdbStore({ dir });
      await store.open();
      const expected = await fullState(store);
      expect((await store.listSubscriptions()).map((s) => s.callback).sort()).to.deep.equal(['http://s/2', 'http://s/3']);
      expect(await exists(path.join(dir, 'snapshot.json'))).to.equal(false);
      expect(await exists(path.join(dir, 'journal.ndjson'))).to.equal(false);
      expect((await shardFiles(dir)).length).to.equal(64);
      await reopen();
      expect(await fullState(store)).to.deep.equal(expected);
    });
  });
});

describe('lowdb store: a read that found no change', function () {
  this.timeout(30_000);
  let feeds: FeedServer;
  before(async () => {
    feeds = await FeedServer.start();
  });
  after(async () => {
    await feeds?.close();
  });

  const checksOf = async (hub: { url: string }, feedUrl: string): Promise<number> =>
    (await testApi<{ resource: ResourceJson }>(hub, 'getResource', { feedUrl })).json.resource.ctChecks;
  /** The ctChecks of the last line of `url`'s topic in the journal's files, as a restart after a crash would replay it. */
  const checksOnDisk = async (dir: string, url: string): Promise<number | undefined> => {
    let last: number | undefined;
    for (const line of (await journalText(dir)).split('\n')) {
      if (!line.includes('"putTopic"') && !line.includes('"checkTopic"')) continue;
      const op = JSON.parse(line) as { topic: { url: string; ctChecks: number } };
      if (op.topic.url === url) last = op.topic.ctChecks;
    }
    return last;
  };

  it('answers a ping without a journal write of its own, writes the check within a second with nothing else written, and keeps it across a stop', async () => {
    const dir = await tempDir();
    let hub = await startTestHub({ DATABASE_URL: '' }, dir);
    try {
      if (!(hub.store instanceof LowdbStore)) throw new Error('expected the embedded store');
      const notModified = feeds.etag(`unchanged-304-${Date.now()}`);
      const sameBody = feeds.fixed(`unchanged-200-${Date.now()}`);
      for (const feed of [notModified, sameBody]) {
        await setSubscriptions(hub, feed, [{ url: 'http://127.0.0.1:9/never-told', protocol: 'http-post' }]);
        expect((await ping(hub, feed)).success, 'first read').to.equal(true);
      }
      await hub.store.flush();
      const PINGS = 10;
      const before = hub.store.stats().journal.batches;
      for (let i = 0; i < PINGS; i++) {
        for (const feed of [notModified, sameBody]) expect((await ping(hub, feed)).success).to.equal(true);
      }
      // Each ping waited for an O_DSYNC batch of its own: 20 batches. Now the checks ride
      // together, one batch a second at most (a slow machine may take a few seconds for these).
      expect(hub.store.stats().journal.batches - before, 'journal batches written while 20 unchanged pings were answered').to.be.below(PINGS / 2);
      expect(feeds.rec.matching((r) => r.path === new URL(notModified).pathname && r.headers['if-none-match'] !== undefined), 'conditional reads (answered 304)').to.have.length(PINGS);
      // Read back at once.
      for (const feed of [notModified, sameBody]) expect(await checksOf(hub, feed), feed).to.equal(PINGS + 1);
      // On disk within a second, with no other write to ride with and no stop.
      for (const feed of [notModified, sameBody]) {
        await until(async () => (await checksOnDisk(dir, feed)) === PINGS + 1, { everyMs: 50 });
        expect(await checksOnDisk(dir, feed), feed).to.equal(PINGS + 1);
      }
      // A stop right after a check writes it before it ends.
      expect((await ping(hub, notModified)).success).to.equal(true);
      await hub.close();
      expect(await checksOnDisk(dir, notModified)).to.equal(PINGS + 2);
      hub = await startTestHub({ DATABASE_URL: '' }, dir);
      expect(await checksOf(hub, notModified)).to.equal(PINGS + 2);
      expect(await checksOf(hub, sameBody)).to.equal(PINGS + 1);
    } finally {
      await hub.destroy();
    }
  });
});
