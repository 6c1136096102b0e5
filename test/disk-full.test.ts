// The embedded store on a disk that misbehaves: a real tmpfs filled to the last page (ENOSPC
// from the kernel), a data directory that turned read-only, files damaged between two runs.
// What must hold: nothing acknowledged is lost, the error is told in the protocol's own words
// and logged as the hub's own, and the hub is whole again once there is room.
import { expect } from 'chai';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '../lib/log.js';
import { newTopic } from '../lib/model.js';
import { LowdbStore } from '../lib/store/lowdb-store.js';
import { startTestHub, type TestHub } from './helpers/hub.js';
import { Recorder } from './helpers/recorder.js';
import { FeedServer, MSG, getSubscriptions, ping, pleaseNotify, postForm, readReply, rpcCall, subscribeForm, subscriberOk } from './helpers/rsscloud.js';
import { SmallDisk } from './helpers/small-disk.js';
import { outbox, sub } from './helpers/store-contract.js';
import { until } from './helpers/until.js';

/** Bodies over INLINE_BODY_MAX go to files of their own in content/. */
const BIG = Buffer.alloc(60 * 1024, 0x2e);

/** A feed server and an rssCloud subscriber for the suite that calls it, started before its tests and closed after. */
function rssCloudServers(): { feeds: FeedServer; subscriber: Recorder } {
  const net = {} as { feeds: FeedServer; subscriber: Recorder };
  before(async () => {
    net.feeds = await FeedServer.start();
    net.subscriber = await Recorder.start(subscriberOk);
  });
  after(async () => {
    await net.feeds?.close();
    await net.subscriber?.close();
  });
  return net;
}

/**
 * Rewrites one line of the data directory's journal segment, the first that `pick` chooses, as
 * `damage` makes it (bytes changed on disk between two runs). Returns the segment, the line's
 * index and its damaged text.
 */
async function damageJournalLine(dir: string, pick: (line: string) => boolean, damage: (line: string) => string): Promise<{ segment: string; at: number; damaged: string }> {
  const [segment] = (await readdir(dir)).filter((f) => /^journal-\d+\.ndjson$/.test(f));
  const file = path.join(dir, segment!);
  const lines = (await readFile(file, 'utf8')).split('\n');
  const at = lines.findIndex(pick);
  const damaged = damage(lines[at]!);
  lines[at] = damaged;
  await writeFile(file, lines.join('\n'));
  return { segment: segment!, at, damaged };
}

/** The error line the store logs for the journal lines it could not read, if any. */
function damageLogged(log: string[]): Record<string, unknown> | undefined {
  return log.map((l) => JSON.parse(l) as Record<string, unknown>).find((e) => typeof e['msg'] === 'string' && e['msg'].includes('unreadable journal lines'));
}

describe('the embedded store on a full disk', function () {
  this.timeout(20_000);
  let disk: SmallDisk;
  let store: LowdbStore | undefined;

  before(async () => {
    disk = await SmallDisk.mount();
  });
  afterEach(async () => {
    await store?.close().catch(() => undefined);
    store = undefined;
    await disk.unfill();
  });
  after(async () => {
    await disk?.unmount();
  });

  it('an outbox body that does not fit leaves no temp file behind, so the space is there again for the next write', async () => {
    const dir = path.join(disk.dir, 'bodies');
    store = new LowdbStore({ dir });
    await store.open();
    await store.putSubscription(sub('http://a/feed0', 'http://s/1'));
    disk.fill(100 * 1024);
    const free = disk.free();
    let failed = 0;
    for (let i = 0; i < 5; i++) await store.putOutbox(outbox(`http://a/feed${i}`, 1), BIG).catch(() => failed++);
    expect(failed, 'bodies that did not fit').to.be.greaterThan(0);
    expect((await readdir(path.join(dir, 'content'))).filter((f) => f.startsWith('.')), 'temp files of the writes that failed').to.deep.equal([]);
    // What the bodies that fit took, and nothing more.
    expect(disk.free()).to.equal(free - (5 - failed) * BIG.length);
  });

  it('a compaction that fails for want of space is logged as an error, and the next one once there is room says so', async () => {
    const dir = path.join(disk.dir, 'compaction');
    const log: Record<string, unknown>[] = [];
    store = new LowdbStore({ dir, compactAfterBytes: 8 * 1024, log: createLogger('info', (line) => void log.push(JSON.parse(line) as Record<string, unknown>)) });
    await store.open();
    // One topic's shard of ~150 KB, rewritten whole by every compaction that follows a change to it.
    for (let i = 0; i < 250; i++) await store.putSubscription(sub('http://a/feed', `http://s/${i}/${'x'.repeat(500)}`));
    await store.settle();
    disk.fill(24 * 1024);
    for (let i = 0; i < 30; i++) await store.putSubscription(sub('http://a/feed', `http://s/more-${i}/${'y'.repeat(500)}`)).catch(() => undefined);
    await store.settle();
    const failed = log.find((e) => e['msg'] === 'store: compaction failed; the journal is kept, and compaction is tried again within COMPACT_INTERVAL_MS, or sooner once it has grown');
    expect(failed, JSON.stringify(log)).to.include({ level: 'error' });
    expect(String(failed!['error'])).to.include('ENOSPC');
    await disk.unfill();
    await store.compact();
    expect(log.map((e) => e['msg'])).to.include('store: compaction succeeded again');
  });

  it('a timed compaction that fails for want of space is tried again COMPACT_INTERVAL_MS later with nothing more written', async () => {
    const dir = path.join(disk.dir, 'timed');
    const log: Record<string, unknown>[] = [];
    store = new LowdbStore({ dir, compactAfterMs: 200, log: createLogger('info', (line) => void log.push(JSON.parse(line) as Record<string, unknown>)) });
    await store.open();
    // One topic's shard of ~150 KB, rewritten whole by every compaction that follows a change to it.
    for (let i = 0; i < 250; i++) await store.putSubscription(sub('http://a/feed', `http://s/${i}/${'x'.repeat(500)}`));
    await store.compact();
    disk.fill(24 * 1024);
    // A subscription ends: a line in the journal, and the timer armed; its compaction cannot write the shard.
    await store.deleteSubscription('http://a/feed', `http://s/0/${'x'.repeat(500)}`);
    const failed = (): boolean => log.some((e) => e['msg'] === 'store: compaction failed; the journal is kept, and compaction is tried again within COMPACT_INTERVAL_MS, or sooner once it has grown');
    await until(failed);
    expect(failed(), JSON.stringify(log)).to.equal(true);
    await disk.unfill();
    const succeeded = (): boolean => log.some((e) => e['msg'] === 'store: compaction succeeded again');
    await until(succeeded);
    expect(succeeded(), 'tried again, nothing more written').to.equal(true);
  });

  it('appends that fail on the full disk leave no trail of empty journal segments, and every acknowledged one is there after a restart', async () => {
    const dir = path.join(disk.dir, 'segments');
    store = new LowdbStore({ dir });
    await store.open();
    await store.putSubscription(sub('http://a/feed', 'http://s/first'));
    disk.fill();
    const acknowledged = ['http://s/first'];
    let failed = 0;
    for (let i = 0; i < 40; i++) {
      const callback = `http://s/${i}/${'x'.repeat(400)}`;
      await store.putSubscription(sub('http://a/feed', callback)).then(
        () => acknowledged.push(callback),
        () => failed++,
      );
    }
    expect(failed, 'appends refused').to.be.greaterThan(30);
    const segments = (await readdir(dir)).filter((f) => /^journal-\d+\.ndjson$/.test(f));
    expect(segments.length, segments.join(' ')).to.be.at.most(2);
    await disk.unfill();
    await store.putSubscription(sub('http://a/feed', 'http://s/last'));
    acknowledged.push('http://s/last');
    await store.close();
    store = new LowdbStore({ dir });
    await store.open();
    expect((await store.subscriptionsOf('http://a/feed')).map((s) => s.callback)).to.include.members(acknowledged);
  });

  it('a topic whose write failed on the full disk is whole after a restart once a read found it unchanged with room again', async () => {
    const dir = path.join(disk.dir, 'checked');
    store = new LowdbStore({ dir });
    await store.open();
    // Fingerprints over a page, so that the write cannot fit in what is left of the segment's last one.
    const prints = (p: string): string[] => Array.from({ length: 400 }, (_, i) => `${p}${i}`);
    const before = { ...newTopic('http://a/changed'), lastHash: 'h1', version: 1, fingerprints: prints('a') };
    await store.putTopic(before);
    disk.fill();
    // A change (its entries) and a topic read for the first time, both in memory but not on disk.
    const changed = { ...before, lastHash: 'h2', version: 2, ctUpdates: 1, fingerprints: prints('b') };
    const added = { ...newTopic('http://a/added'), lastHash: 'h3', version: 1, fingerprints: prints('c') };
    const failed = await Promise.all([store.putTopic(changed), store.putTopic(added)].map((p) => p.then(() => false, () => true)));
    expect(failed, 'writes refused on the full disk').to.deep.equal([true, true]);
    await disk.unfill();
    // Each read again, found as memory holds it: its check is all the journal gets of it.
    for (const t of [changed, added]) await store.recordCheck({ ...(await store.getTopic(t.url))!, ctChecks: 1, whenLastCheck: 1000 });
    await store.close();
    store = new LowdbStore({ dir });
    await store.open();
    expect(await store.getTopic(changed.url)).to.deep.equal({ ...changed, ctChecks: 1, whenLastCheck: 1000 });
    expect(await store.getTopic(added.url)).to.deep.equal({ ...added, ctChecks: 1, whenLastCheck: 1000 });

    // Once a compaction has written the shards from memory, a check is journalled without them again.
    disk.fill();
    expect(await store.putTopic({ ...added, fingerprints: prints('d') }).then(() => 'written', () => 'refused')).to.equal('refused');
    await disk.unfill();
    await store.compact();
    await store.recordCheck({ ...(await store.getTopic(added.url))!, ctChecks: 2, whenLastCheck: 2000 });
    await store.flush();
    const [segment] = (await readdir(dir)).filter((f) => /^journal-\d+\.ndjson$/.test(f));
    expect((await readFile(path.join(dir, segment!), 'utf8')).trim().split('\n').map((l) => (JSON.parse(l) as { op: string }).op)).to.deep.equal(['checkTopic']);
  });
});

/** The words of a failure of the hub's own, written here apart from lib/messages.ts. */
const HUB_FAILURE = 'The hub could not complete the request because of a problem on its side. Please try again later.';

describe('a hub on a full disk', function () {
  this.timeout(20_000);
  const net = rssCloudServers();
  let disk: SmallDisk;
  before(async () => {
    disk = await SmallDisk.mount();
  });
  after(async () => {
    await disk?.unmount();
  });

  it('refuses what it cannot store in each face\'s own words, logs it as its own failure, keeps every registration it acknowledged, and takes new ones once there is room', async () => {
    const dir = path.join(disk.dir, 'hub');
    const feed = net.feeds.fixed('full-disk');
    const changing = net.feeds.changing('full-disk-changing');
    const log: string[] = [];
    let hub: TestHub | undefined = await startTestHub({ DATABASE_URL: '' }, dir, { log: createLogger('info', (line) => void log.push(line)) });
    try {
      expect((await pleaseNotify(hub, subscribeForm(net.subscriber, '/before', feed, { url2: changing }))).success).to.equal(true);
      disk.fill();
      // The journal's last page may still take a line or two: register until one is refused.
      const acknowledged = ['/before'];
      let refused;
      for (let i = 0; i < 20 && !refused; i++) {
        const cb = `/full-${i}-${'x'.repeat(1500)}`;
        const reply = await readReply(await postForm(hub.url, '/pleaseNotify', subscribeForm(net.subscriber, cb, feed)));
        if (reply.success) acknowledged.push(cb);
        else refused = reply;
      }
      expect(refused, 'a registration refused on the full disk').to.not.equal(undefined);
      // Not the publisher's fault: its feed reads fine.
      expect({ status: refused!.status, root: refused!.root, msg: refused!.msg }).to.deep.equal({ status: 500, root: 'notifyResult', msg: HUB_FAILURE });
      // A new version of a feed cannot be stored: the hub's own failure. A read that found no
      // change has only its check to keep, which a crash may lose anyway (Store.recordCheck):
      // the ping worked, and is answered so.
      expect(await ping(hub, changing)).to.include({ status: 500, root: 'result', success: false, msg: HUB_FAILURE });
      expect(await ping(hub, feed)).to.include({ status: 200, root: 'result', success: true, msg: MSG.pinged });
      const rpc = await rpcCall(hub.url, 'rssCloud.pleaseNotify', ['notify', net.subscriber.port, '/rpc', 'http-post', [feed]]);
      expect(rpc).to.deep.equal({ ok: false, faultCode: 4, faultString: HUB_FAILURE });
      // rssCloud.ping answers true to every well-formed ping, as the reference server does.
      expect(await rpcCall(hub.url, 'rssCloud.ping', [feed])).to.deep.equal({ ok: true, value: true });
      const errors = log.map((l) => JSON.parse(l) as Record<string, unknown>).filter((e) => e['level'] === 'error');
      expect(errors.map((e) => String(e['error'])).join('\n'), 'the cause, in the log').to.include('ENOSPC');

      await disk.unfill();
      expect((await pleaseNotify(hub, subscribeForm(net.subscriber, '/after', feed))).success, 'once there is room again').to.equal(true);
      acknowledged.push('/after');
      await hub.close();
      hub = await startTestHub({ DATABASE_URL: '' }, dir);
      const kept = (await getSubscriptions(hub, feed)).map((s) => new URL(s.url).pathname);
      expect(kept, 'every registration answered success').to.include.members(acknowledged);
    } finally {
      await hub?.close();
    }
  });
});

describe('a hub on a data directory that turned read-only', function () {
  this.timeout(20_000);
  const net = rssCloudServers();
  let disk: SmallDisk;
  before(async () => {
    disk = await SmallDisk.mount();
  });
  after(async () => {
    if (disk) {
      disk.readOnly(false);
      await disk.unmount();
    }
  });

  it('does not start (naming the directory and why) rather than answer requests it can store nothing of, and loses nothing', async () => {
    const dir = path.join(disk.dir, 'hub');
    const feed = net.feeds.fixed('read-only');
    let hub = await startTestHub({ DATABASE_URL: '' }, dir);
    expect((await pleaseNotify(hub, subscribeForm(net.subscriber, '/kept', feed))).success).to.equal(true);
    await (hub.store as LowdbStore).compact();
    await hub.close();
    disk.readOnly(true);
    const failed = await startTestHub({ DATABASE_URL: '' }, dir).then(
      async (h) => (await h.close(), 'it started'),
      (e: unknown) => (e as Error).message,
    );
    expect(failed).to.include(dir).and.to.include('not writable').and.to.include('EROFS');
    disk.readOnly(false);
    hub = await startTestHub({ DATABASE_URL: '' }, dir);
    try {
      expect((await getSubscriptions(hub, feed)).map((s) => new URL(s.url).pathname)).to.deep.equal(['/kept']);
    } finally {
      await hub.close();
    }
  });
});

describe('the embedded store on files damaged between two runs', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'pushbutton-damaged-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('a truncated snapshot shard stops open() with an error that names the file, and is left as it was', async () => {
    const store = new LowdbStore({ dir });
    await store.open();
    for (let i = 0; i < 3; i++) await store.putSubscription(sub('http://a/feed', `http://s/${i}`));
    await store.compact();
    await store.close();
    const [shard] = (await readdir(dir)).filter((f) => /^snapshot-\d\d\.json$/.test(f));
    const text = await readFile(path.join(dir, shard!), 'utf8');
    await writeFile(path.join(dir, shard!), text.slice(0, text.length >> 1));
    const refused = await new LowdbStore({ dir }).open().then(
      () => 'it opened',
      (e: unknown) => (e as Error).message,
    );
    expect(refused).to.include(path.join(dir, shard!)).and.to.include('damaged');
    expect(await readFile(path.join(dir, shard!), 'utf8'), 'the damaged file, for whoever repairs it').to.equal(text.slice(0, text.length >> 1));
  });
});

describe('the embedded store on journals damaged twice', () => {
  it('keeps the damaged lines of both, though the segments had the same name', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'pushbutton-damaged-'));
    try {
      const kept: string[] = [];
      for (const round of ['first', 'second']) {
        let store = new LowdbStore({ dir });
        await store.open();
        for (let i = 0; i < 2; i++) await store.putSubscription(sub('http://a/feed', `http://s/${round}-${i}`));
        await store.close();
        const { damaged } = await damageJournalLine(dir, () => true, (line) => line.slice(0, 3) + '\x01' + line.slice(4));
        kept.push(damaged + '\n');
        // Replays (the damaged line set aside) and deletes the segment; writes nothing, so the
        // next start's first segment has the same number.
        store = new LowdbStore({ dir });
        await store.open();
        await store.close();
      }
      const files = (await readdir(dir)).filter((f) => f.startsWith('damaged-')).sort();
      const texts = await Promise.all(files.map((f) => readFile(path.join(dir, f), 'utf8')));
      expect(texts.sort()).to.deep.equal(kept.sort());
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('a hub restarted on a journal damaged in the middle', function () {
  this.timeout(20_000);
  const net = rssCloudServers();
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'pushbutton-damaged-'));
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('keeps every registration after a damaged line, says so in its log, and keeps the damaged line for repair', async () => {
    const feed = net.feeds.fixed('damaged');
    let hub = await startTestHub({ DATABASE_URL: '' }, dir);
    for (const p of ['/one', '/two', '/three']) expect((await pleaseNotify(hub, subscribeForm(net.subscriber, p, feed))).success).to.equal(true);
    await hub.close();
    // One flipped byte in the first registration's line, as a bad sector would leave it.
    const { segment, at, damaged } = await damageJournalLine(
      dir,
      (l) => l.startsWith('{"op":"putSub"') && l.includes('/one'),
      (line) => line.slice(0, 5) + '\x01' + line.slice(6),
    );

    const log: string[] = [];
    hub = await startTestHub({ DATABASE_URL: '' }, dir, { log: createLogger('info', (line) => void log.push(line)) });
    try {
      const callbacks = (await getSubscriptions(hub, feed)).map((s) => new URL(s.url).pathname).sort();
      expect(callbacks, 'the registrations after the damaged line').to.deep.equal(['/three', '/two']);
    } finally {
      await hub.close();
    }
    const said = damageLogged(log);
    expect(said, log.join('\n')).to.include({ level: 'error', segment, lines: String(at + 1) });
    expect(await readFile(path.join(dir, `damaged-${segment}`), 'utf8')).to.equal(damaged + '\n');
  });

  it('takes a line that still parses but lost a field to a flipped bit for damage too, rather than stop the start', async () => {
    const feed = net.feeds.fixed('damaged-key');
    let hub = await startTestHub({ DATABASE_URL: '' }, dir);
    for (const p of ['/k-one', '/k-two']) expect((await pleaseNotify(hub, subscribeForm(net.subscriber, p, feed))).success).to.equal(true);
    await hub.close();
    // 'b' (0x62) with its low bit flipped is 'c': still JSON, but the op has no "sub".
    const { segment, at, damaged } = await damageJournalLine(
      dir,
      (l) => l.startsWith('{"op":"putSub"') && l.includes('/k-one'),
      (line) => line.replace('"sub":', '"suc":'),
    );

    const log: string[] = [];
    hub = await startTestHub({ DATABASE_URL: '' }, dir, { log: createLogger('info', (line) => void log.push(line)) });
    try {
      const callbacks = (await getSubscriptions(hub, feed)).map((s) => new URL(s.url).pathname);
      expect(callbacks).to.deep.equal(['/k-two']);
    } finally {
      await hub.close();
    }
    const said = damageLogged(log);
    expect(said, log.join('\n')).to.include({ level: 'error', segment, lines: String(at + 1) });
    // Where the log says: the test before left damaged lines of a segment of the same name.
    expect(await readFile(String(said!['keptIn']), 'utf8')).to.equal(damaged + '\n');
  });
});

describe('a hub whose store refuses the write of one topic of a registration', function () {
  this.timeout(20_000);
  const net = rssCloudServers();

  it('answers success when another URL of it subscribed, as for any failure, and is subscribed when it answers', async () => {
    const good = net.feeds.fixed('one-of-two-good');
    const refused = net.feeds.fixed('one-of-two-refused');
    const log: string[] = [];
    const hub = await startTestHub({ DATABASE_URL: '' }, undefined, { log: createLogger('info', (line) => void log.push(line)) });
    // The store fails that topic's write alone (a body too large for the space left, a disk error).
    const store = hub.store as unknown as { putTopic: (t: { url: string }) => Promise<void> };
    const putTopic = store.putTopic.bind(store);
    store.putTopic = (t) => (t.url.startsWith(refused) ? Promise.reject(new Error('EIO: i/o error, write')) : putTopic(t));
    try {
      const reply = await pleaseNotify(hub, { ...subscribeForm(net.subscriber, '/one-of-two', good), url2: refused });
      const now = (await getSubscriptions(hub, good)).map((s) => new URL(s.url).pathname);
      expect({ success: reply.success, msg: reply.msg, subscribed: now }).to.deep.equal({ success: true, msg: MSG.subscribed, subscribed: ['/one-of-two'] });
      const errors = log.map((l) => JSON.parse(l) as Record<string, unknown>).filter((e) => e['level'] === 'error');
      expect(errors.map((e) => `${String(e['topic'])} ${String(e['error'])}`), 'the failure it did not answer, in the log').to.deep.equal([`${refused} EIO: i/o error, write`]);
      // Every URL refused: the hub's own failure, in rssCloud's shape.
      const both = await pleaseNotify(hub, { ...subscribeForm(net.subscriber, '/both', refused), url2: refused + '?2' });
      expect(both).to.include({ status: 500, success: false, msg: HUB_FAILURE });
    } finally {
      await hub.destroy();
    }
  });
});
