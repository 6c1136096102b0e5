// What an operator meets when a file in DATA_DIR is damaged by something other than a crash of
// the hub (a hand edit, a restore from the wrong place, another program): the start stops with
// the file named and what is wrong with it, rather than a TypeError from deep inside open().
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { copyFile, mkdir, readFile, readdir, rm, truncate, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startTestHub, tempDataDir } from './helpers/hub.js';
import { Recorder } from './helpers/recorder.js';
import { embeddedOnly } from './helpers/store-under-test.js';
import { contentFileName } from '../lib/store/content-files.js';
import { INLINE_BODY_MAX, LowdbStore } from '../lib/store/lowdb-store.js';
import { emptyShard, shardFileName, shardOf, SHARD_FORMAT, WRITTEN_SHARDS_FILE } from '../lib/store/snapshot-file.js';
import { replaySegment, segmentName, type JournalOp } from '../lib/store/journal.js';
import { sub } from './helpers/store-contract.js';
import { newSubscription, newTopic } from '../lib/model.js';
import { until } from './helpers/until.js';

async function startError(dir: string): Promise<string> {
  try {
    const hub = await startTestHub({}, dir);
    await hub.close();
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
  throw new Error('the hub started');
}

embeddedOnly('writes snapshot shards into DATA_DIR', () => describe('embedded store: a snapshot shard of the right format but the wrong shape', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await tempDataDir();
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('stops the start naming the file and the list that is not one', async () => {
    const file = path.join(dir, shardFileName(7));
    await writeFile(file, JSON.stringify({ ...emptyShard(7), subscriptions: { a: 1 } }));
    const message = await startError(dir);
    expect(message).to.include(file).and.include('subscriptions').and.include('restore it from a backup');
  });

  it('stops the start naming the file and the record that cannot be read', async () => {
    const file = path.join(dir, shardFileName(3));
    const sub = { topic: 'http://feed.example/t', callback: 'http://cb.example/c', protocol: 'websub', whenExpires: 4e12 };
    // Its topic lost (a hand edit): the record names its fields, never their values (a secret).
    const damaged = { callback: 'http://cb.example/d', protocol: 'websub', secret: 'hunter2-secret', whenExpires: 4e12 };
    await writeFile(file, JSON.stringify({ ...emptyShard(3), subscriptions: [sub, damaged], topics: [{ url: 'http://feed.example/t', version: 0 }] }));
    const message = await startError(dir);
    expect(message).to.include(file).and.include('subscriptions[1]').and.include('fields: callback, protocol, secret, whenExpires');
    expect(message).to.not.include('hunter2');
  });

  for (const size of [-1, 2.5]) {
    it(`stops the start at an outbox record whose body size is ${size} (not a byte count), as the journal refuses one`, async () => {
      // Loaded before, the entry's body file was refused at delivery as "not the size it was
      // written at", logged as a damaged content file rather than the snapshot shard that is.
      const file = path.join(dir, shardFileName(5));
      const entry = { topic: 'http://feed.example/t', version: 1, contentType: 'text/plain', createdAt: 1, size };
      await writeFile(file, JSON.stringify({ ...emptyShard(5), outbox: [entry] }));
      const message = await startError(dir);
      expect(message).to.include(file).and.include('outbox[0]').and.include('restore it from a backup');
    });
  }
}));

embeddedOnly('writes journal segments into DATA_DIR', () =>
  describe('embedded store: a journal line whose outbox body size is not a byte count', () => {
    let dir: string;
    before(async () => {
      dir = await tempDataDir();
    });
    after(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('is damage, as in a snapshot shard, and the lines after it are still applied', async () => {
      const entry = { topic: 'http://feed.example/t', version: 1, contentType: 'text/plain', createdAt: 1 };
      const lines = [
        { op: 'putOutbox', entry, size: -1 },
        { op: 'putOutbox', entry: { ...entry, version: 2 }, size: 40_000 },
      ];
      const file = path.join(dir, segmentName(1));
      await writeFile(file, lines.map((l) => JSON.stringify(l) + '\n').join(''));
      const applied: JournalOp[] = [];
      const r = await replaySegment(file, (op) => void applied.push(op));
      expect(r.damaged.map((d) => d.line)).to.deep.equal([1]);
      expect(applied).to.deep.equal([lines[1]]);
    });
  }));

/** Topic URLs that hash to `n` different snapshot shards. */
function topicsInShards(n: number): string[] {
  const out: string[] = [];
  const seen = new Set<number>();
  for (let i = 0; out.length < n; i++) {
    const url = `http://feed.example/${i}`;
    if (seen.has(shardOf(url))) continue;
    seen.add(shardOf(url));
    out.push(url);
  }
  return out;
}

async function subscribe(store: LowdbStore, topic: string, callback = `http://cb.example/${shardOf(topic)}`): Promise<void> {
  const now = Date.now();
  await store.putTopic(newTopic(topic));
  await store.putSubscription(newSubscription(topic, callback, 'websub', now, now + 3_600_000));
}

async function callbacksOf(dir: string, topics: string[]): Promise<string[]> {
  const hub = await startTestHub({}, dir);
  try {
    const out: string[] = [];
    for (const t of topics) for (const s of await hub.store.subscriptionsOf(t)) out.push(s.callback);
    return out;
  } finally {
    await hub.close();
  }
}

embeddedOnly('writes snapshot shards into DATA_DIR', () =>
  describe('embedded store: a snapshot shard file missing', () => {
    const [kept, lost] = topicsInShards(2) as [string, string];
    const lostFile = (d: string): string => path.join(d, shardFileName(shardOf(lost)));
    const dirs: string[] = [];
    const newDir = async (): Promise<string> => {
      const d = await tempDataDir();
      dirs.push(d);
      return d;
    };
    afterEach(async () => {
      for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
    });

    it('stops the start naming the file and DATA_DIR, once the journal that held its records is gone', async () => {
      const dir = await newDir();
      const store = new LowdbStore({ dir });
      await store.open();
      await subscribe(store, kept);
      await subscribe(store, lost);
      await store.compact();
      await store.close();
      await unlink(lostFile(dir));
      // Started on what is left, the hub had served the kept topic alone, its subscriber on the lost one never told.
      const message = await startError(dir);
      expect(message).to.include(lostFile(dir)).and.include(`DATA_DIR (${path.resolve(dir)})`).and.include('restore it from a backup');
    });

    it('loads a snapshot written before the list of shards as it did, and lists its shards from then on', async () => {
      const dir = await newDir();
      // Shard files as builds before the list wrote them, and no list.
      const now = Date.now();
      for (const topic of [kept, lost]) {
        const sub = newSubscription(topic, `http://cb.example/${shardOf(topic)}`, 'websub', now, now + 3_600_000);
        await writeFile(path.join(dir, shardFileName(shardOf(topic))), JSON.stringify({ ...emptyShard(shardOf(topic)), topics: [newTopic(topic)], subscriptions: [sub] }));
      }
      expect(await callbacksOf(dir, [kept, lost])).to.deep.equal([`http://cb.example/${shardOf(kept)}`, `http://cb.example/${shardOf(lost)}`]);
      expect(await readdir(dir)).to.include(WRITTEN_SHARDS_FILE);
      await unlink(lostFile(dir));
      expect(await startError(dir)).to.include(lostFile(dir));
    });

    it(`stops the start naming ${WRITTEN_SHARDS_FILE} when it is lost with the shard, once a shard was written after it`, async () => {
      const dir = await newDir();
      const store = new LowdbStore({ dir });
      await store.open();
      await subscribe(store, kept);
      await subscribe(store, lost);
      await store.compact();
      await subscribe(store, kept); // its shard written again, now that the list is there
      await store.compact();
      await store.close();
      await unlink(lostFile(dir));
      await unlink(path.join(dir, WRITTEN_SHARDS_FILE));
      const message = await startError(dir);
      expect(message).to.include(path.join(dir, WRITTEN_SHARDS_FILE)).and.include(shardFileName(shardOf(kept))).and.include(`DATA_DIR (${path.resolve(dir)})`);
    });

    // Segment numbers start again after a start that found none; numbered from 1 again, a later
    // segment looked older than the compaction that wrote the shard, and the shard's loss passed.
    it('stops the start when the shard is lost after a start that found no journal segment, and one was written since', async () => {
      const dir = await newDir();
      let store = new LowdbStore({ dir });
      await store.open();
      await subscribe(store, lost);
      await store.compact();
      await store.close();
      expect((await readdir(dir)).filter((n) => n.startsWith('journal-')), 'no segment left').to.deep.equal([]);
      store = new LowdbStore({ dir });
      await store.open();
      await subscribe(store, kept);
      await store.close();
      expect((await readdir(dir)).filter((n) => n.startsWith('journal-')), 'the new one').to.have.length(1);
      await unlink(lostFile(dir));
      expect(await startError(dir)).to.include(lostFile(dir));
    });

    it('stops the start from a backup whose segments hold only later records of a shard written before them (it keeps the segment of its first write)', async () => {
      const dir = await newDir();
      const backup = await newDir();
      const store = new LowdbStore({ dir });
      await store.open();
      await subscribe(store, lost, 'http://cb.example/first');
      await store.compact();
      await subscribe(store, lost, 'http://cb.example/second');
      await store.flush();
      for (const name of (await readdir(dir)).filter((n) => n.startsWith('journal-'))) await copyFile(path.join(dir, name), path.join(backup, name));
      await store.compact();
      await store.close();
      for (const name of await readdir(dir)) {
        if (name.startsWith('snapshot-') && path.join(dir, name) !== lostFile(dir)) await copyFile(path.join(dir, name), path.join(backup, name));
      }
      // Its first subscription is in the shard alone: started on the segment, the hub had served the second only.
      expect(await startError(backup)).to.include(lostFile(backup));
    });

    // Told to remove a damaged list, an operator found the start refused for the list's absence
    // instead, with nothing to do but restore it from a backup they might not have.
    it(`says how to start without a backup when ${WRITTEN_SHARDS_FILE} is damaged or lost, and the shards that are there are served`, async () => {
      const dir = await newDir();
      const store = new LowdbStore({ dir });
      await store.open();
      await subscribe(store, kept);
      await store.compact();
      await subscribe(store, lost); // its shard written while the list is there
      await store.compact();
      await store.close();
      const EMPTY_LIST = `{"format":1,"shards":64,"written":[]}`;
      for (const damage of [
        () => writeFile(path.join(dir, WRITTEN_SHARDS_FILE), '{"format":1}'),
        () => writeFile(path.join(dir, WRITTEN_SHARDS_FILE), '{"format":1,"shards":64,"written":[[0,'),
        () => writeFile(path.join(dir, WRITTEN_SHARDS_FILE), '{"format":1,"shards":64,"written":[[64,1]]}'),
        () => unlink(path.join(dir, WRITTEN_SHARDS_FILE)),
      ]) {
        await damage();
        const message = await startError(dir);
        expect(message).to.include(path.join(dir, WRITTEN_SHARDS_FILE)).and.include('restore it from a backup').and.include(EMPTY_LIST);
        expect(message).to.not.include('or remove it');
        await writeFile(path.join(dir, WRITTEN_SHARDS_FILE), EMPTY_LIST);
        expect(await callbacksOf(dir, [kept, lost])).to.deep.equal([`http://cb.example/${shardOf(kept)}`, `http://cb.example/${shardOf(lost)}`]);
      }
    });

    it(`stops the start naming ${WRITTEN_SHARDS_FILE} when it is not a list of shards`, async () => {
      const dir = await newDir();
      await writeFile(path.join(dir, WRITTEN_SHARDS_FILE), JSON.stringify({ format: 1, shards: 64, written: [[64, 1]] }));
      expect(await startError(dir)).to.include(path.join(dir, WRITTEN_SHARDS_FILE)).and.include('damaged');
    });

    it('starts from a backup whose segments were copied before the compaction that first wrote the shard (README)', async () => {
      const dir = await newDir();
      const backup = await newDir();
      const store = new LowdbStore({ dir });
      await store.open();
      await subscribe(store, kept);
      await store.compact();
      await subscribe(store, lost);
      await store.flush();
      // The segments first, as README says; then the rest, from after a compaction that wrote the
      // lost topic's shard for the first time and deleted the segment, but without that shard (a
      // copy that listed the directory before the shard was there).
      for (const name of (await readdir(dir)).filter((n) => n.startsWith('journal-'))) await copyFile(path.join(dir, name), path.join(backup, name));
      await store.compact();
      await store.close();
      for (const name of await readdir(dir)) {
        if (name.startsWith('snapshot-') && path.join(dir, name) !== lostFile(dir)) await copyFile(path.join(dir, name), path.join(backup, name));
      }
      expect(await readdir(backup)).to.include(WRITTEN_SHARDS_FILE).and.not.include(path.basename(lostFile(dir)));
      expect(await callbacksOf(backup, [kept, lost])).to.deep.equal([`http://cb.example/${shardOf(kept)}`, `http://cb.example/${shardOf(lost)}`]);
      // Written again at that start: its loss is told from then on.
      await unlink(lostFile(backup));
      expect(await startError(backup)).to.include(lostFile(backup));
    });
  }));

embeddedOnly('writes files of another build into DATA_DIR', () => describe('embedded store: files a newer build wrote, or that are not the store\'s', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await tempDataDir();
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('stops the start at a snapshot shard that is JSON but not an object, naming the file', async () => {
    for (const text of ['[]', 'null', '"snapshot"']) {
      const file = path.join(dir, shardFileName(5));
      await writeFile(file, text);
      const message = await startError(dir);
      expect(message, text).to.include(file).and.include('not a JSON object').and.include('restore it from a backup');
      expect(await readFile(file, 'utf8'), 'left as it was').to.equal(text);
    }
  });

  it('stops the start at a snapshot shard of another format or shard count (a newer build\'s), leaving it as it was', async () => {
    const file = path.join(dir, shardFileName(2));
    const text = JSON.stringify({ ...emptyShard(2), format: SHARD_FORMAT + 1 });
    await writeFile(file, text);
    expect(await startError(dir)).to.include(shardFileName(2)).and.include(`format ${SHARD_FORMAT + 1}`).and.include(`this build reads format ${SHARD_FORMAT}`);
    expect(await readFile(file, 'utf8')).to.equal(text);
  });

  // A read that fails (a bad sector's EIO, a directory in the file's place: EISDIR) said only
  // "EISDIR: illegal operation on a directory, read", without the file, as Node words it.
  it('names a snapshot shard or journal segment it cannot read, with the system\'s reason', async () => {
    for (const name of [shardFileName(5), 'journal-00000007.ndjson']) {
      const file = path.join(dir, name);
      await mkdir(file);
      expect(await startError(dir), name).to.include(file).and.include('EISDIR');
      await rm(file, { recursive: true });
    }
  });

  it('stops the start at a journal op it does not know (a newer build\'s) rather than skip it, and loses nothing', async () => {
    const store = new LowdbStore({ dir });
    await store.open();
    await store.putSubscription(sub('http://feed.example/a', 'http://cb.example/a'));
    await store.close();
    const [segment] = (await readdir(dir)).filter((f) => /^journal-\d+\.ndjson$/.test(f));
    const file = path.join(dir, segment!);
    const written = await readFile(file, 'utf8');
    await writeFile(file, `${written}{"op":"putFutureThing","thing":{"id":1}}\n`);
    const message = await startError(dir);
    expect(message).to.include(segment!).and.include('unknown journal op').and.include('putFutureThing');
    // The segment is kept whole: a build that knows the op (or an operator removing the line) reads it all.
    expect(await readFile(file, 'utf8')).to.equal(`${written}{"op":"putFutureThing","thing":{"id":1}}\n`);
    await writeFile(file, written);
    const reopened = new LowdbStore({ dir });
    await reopened.open();
    expect(await reopened.getSubscription('http://feed.example/a', 'http://cb.example/a')).to.not.equal(undefined);
    await reopened.close();
  });
}));

embeddedOnly('cuts a file in DATA_DIR/content short', () =>
  describe('embedded store: an outbox body file cut short, or gone', () => {
    let sub: Recorder;
    let dir: string;
    before(async () => {
      sub = await Recorder.start();
    });
    after(async () => {
      await sub.close();
    });
    afterEach(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    // Gone: deleted by hand, or by a clean-up of "old files" in DATA_DIR.
    for (const [damage, compacted] of [['cut short', false], ['cut short', true], ['gone', false], ['gone', true]] as const) {
      it(`${damage}: is not delivered as the version's content; the other topics' versions are (size from the ${compacted ? 'snapshot' : 'journal'})`, async () => {
        dir = await tempDataDir();
        // Versions waiting in the outbox when the hub stopped, each with a body in content/.
        const store = new LowdbStore({ dir });
        await store.open();
        const now = Date.now();
        for (const name of ['cut', 'whole']) {
          const topic = `http://feed.example/${name}`;
          await store.putTopic(newTopic(topic));
          await store.putSubscription(newSubscription(topic, `${sub.url}/${name}`, 'websub', now, now + 3_600_000));
          await store.putOutbox({ topic, version: 1, contentType: 'text/plain', createdAt: now }, Buffer.alloc(INLINE_BODY_MAX + 1000, name[0]));
        }
        if (compacted) await store.compact();
        await store.close();
        const body = path.join(dir, 'content', contentFileName('http://feed.example/cut', 1));
        if (damage === 'gone') await rm(body);
        else await truncate(body, 100);

        const hub = await startTestHub({}, dir);
        try {
          const [whole] = await sub.waitFor(1);
          expect(whole!.url).to.equal('/whole');
          expect(whole!.body.length).to.equal(INLINE_BODY_MAX + 1000);
          // The cut version is skipped (logged), and leaves the outbox as a delivered one does.
          await until(async () => (await hub.store.listOutbox()).length === 0);
          expect(await hub.store.listOutbox()).to.deep.equal([]);
          expect(sub.requests.map((r) => r.url)).to.deep.equal(['/whole']);
        } finally {
          await hub.close();
          sub.requests.length = 0;
        }
      });
    }
  }));

embeddedOnly('DATA_DIR is a path of the embedded store', () =>
  describe('embedded store: a DATA_DIR the store cannot use', () => {
    let dir: string;
    beforeEach(async () => {
      dir = await tempDataDir();
    });
    afterEach(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('names a DATA_DIR that is a file, or lies under one, as not a directory', async () => {
      const file = path.join(dir, 'data');
      await writeFile(file, '');
      expect(await startError(file)).to.include(`${file} is not a directory`);
      expect(await startError(path.join(file, 'below'))).to.include(`${path.join(file, 'below')} is not a directory`);
    });

    it('names a journal segment it may not remove (chattr +i), not a directory it never had', async function () {
      const first = await startTestHub({}, dir);
      const now = Date.now();
      await first.store.putTopic(newTopic('http://feed.example/kept'));
      await first.store.putSubscription(newSubscription('http://feed.example/kept', 'http://cb.example/kept', 'websub', now, now + 3_600_000));
      await first.close();
      const [segment] = (await readdir(dir)).filter((n) => n.startsWith('journal-'));
      const file = path.join(dir, segment!);
      try {
        execFileSync('chattr', ['+i', file], { stdio: 'ignore' });
      } catch {
        this.skip(); // not root, or a file system without the flag
      }
      try {
        const message = await startError(dir);
        expect(message).to.include(file).and.not.include('scandir');
      } finally {
        execFileSync('chattr', ['-i', file]);
      }
      // With the flag gone, the start goes on and keeps what the segment holds.
      const second = await startTestHub({}, dir);
      try {
        expect((await second.store.subscriptionsOf('http://feed.example/kept')).map((s) => s.callback)).to.deep.equal(['http://cb.example/kept']);
      } finally {
        await second.close();
      }
    });
  }));
