// The embedded store: every record lives in memory, a lowdb JSON snapshot holds the state
// as of the last compaction, and an append-only journal holds every change since. Writes
// that arrive together share one append and one fdatasync (group commit), so a write is
// durable before its promise resolves without rewriting the whole file per request.
// docs/adr/0002-embedded-store-durability.md explains the choice.
import { mkdir, open, readFile, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Low } from 'lowdb';
import { JSONFile } from 'lowdb/node';
import type { Subscription, Topic } from '../model.js';
import type { Store, StoreCounts } from './store.js';

interface Snapshot {
  topics: Topic[];
  subscriptions: Subscription[];
}

type JournalOp =
  | { op: 'putTopic'; topic: Topic }
  | { op: 'delTopic'; url: string }
  | { op: 'putSub'; sub: Subscription }
  | { op: 'delSub'; topic: string; callback: string }
  | { op: 'clear' };

interface Pending {
  line: string;
  resolve: () => void;
  reject: (e: unknown) => void;
}

export interface LowdbStoreOptions {
  dir: string;
  /** Compact (new snapshot, empty journal) once the journal grows past this many bytes. */
  compactAfterBytes?: number;
}

export class LowdbStore implements Store {
  private readonly topics = new Map<string, Topic>();
  private readonly subs = new Map<string, Map<string, Subscription>>();
  private readonly snapshotDb: Low<Snapshot>;
  private readonly journalPath: string;
  private readonly compactAfterBytes: number;
  private journal: FileHandle | undefined;
  private journalBytes = 0;
  private queue: Pending[] = [];
  private flushing: Promise<void> | undefined;

  constructor(private readonly opts: LowdbStoreOptions) {
    this.snapshotDb = new Low<Snapshot>(new JSONFile<Snapshot>(path.join(opts.dir, 'snapshot.json')), {
      topics: [],
      subscriptions: [],
    });
    this.journalPath = path.join(opts.dir, 'journal.ndjson');
    this.compactAfterBytes = opts.compactAfterBytes ?? 16 * 1024 * 1024;
  }

  async open(): Promise<void> {
    await mkdir(this.opts.dir, { recursive: true });
    await this.snapshotDb.read();
    for (const t of this.snapshotDb.data.topics) this.topics.set(t.url, t);
    for (const s of this.snapshotDb.data.subscriptions) this.subMap(s.topic).set(s.callback, s);
    await this.replayJournal();
    // Start every run from a fresh snapshot so that a torn last line of the old journal
    // can never be followed by new appends.
    await this.compact();
  }

  async close(): Promise<void> {
    await this.flush();
    await this.journal?.close();
    this.journal = undefined;
  }

  async flush(): Promise<void> {
    while (this.flushing || this.queue.length > 0) {
      await (this.flushing ?? this.startFlush());
    }
  }

  async getTopic(url: string): Promise<Topic | undefined> {
    const t = this.topics.get(url);
    return t && { ...t };
  }

  putTopic(topic: Topic): Promise<void> {
    const copy = { ...topic };
    this.topics.set(copy.url, copy);
    return this.append({ op: 'putTopic', topic: copy });
  }

  deleteTopic(url: string): Promise<void> {
    this.topics.delete(url);
    this.subs.delete(url);
    return this.append({ op: 'delTopic', url });
  }

  async listTopics(): Promise<Topic[]> {
    return [...this.topics.values()].map((t) => ({ ...t }));
  }

  async getSubscription(topic: string, callback: string): Promise<Subscription | undefined> {
    const s = this.subs.get(topic)?.get(callback);
    return s && { ...s };
  }

  putSubscription(sub: Subscription): Promise<void> {
    const copy = { ...sub };
    this.subMap(copy.topic).set(copy.callback, copy);
    return this.append({ op: 'putSub', sub: copy });
  }

  async deleteSubscription(topic: string, callback: string): Promise<boolean> {
    const existed = this.removeSub(topic, callback);
    if (existed) await this.append({ op: 'delSub', topic, callback });
    return existed;
  }

  async subscriptionsOf(topic: string): Promise<Subscription[]> {
    return [...(this.subs.get(topic)?.values() ?? [])].map((s) => ({ ...s }));
  }

  async listSubscriptions(): Promise<Subscription[]> {
    const all: Subscription[] = [];
    for (const m of this.subs.values()) for (const s of m.values()) all.push({ ...s });
    return all;
  }

  async counts(): Promise<StoreCounts> {
    const byProtocol: Record<string, number> = {};
    let subscriptions = 0;
    for (const m of this.subs.values()) {
      for (const s of m.values()) {
        subscriptions++;
        byProtocol[s.protocol] = (byProtocol[s.protocol] ?? 0) + 1;
      }
    }
    return { topics: this.topics.size, subscriptions, byProtocol };
  }

  clear(): Promise<void> {
    this.topics.clear();
    this.subs.clear();
    return this.append({ op: 'clear' });
  }

  private subMap(topic: string): Map<string, Subscription> {
    let m = this.subs.get(topic);
    if (!m) {
      m = new Map();
      this.subs.set(topic, m);
    }
    return m;
  }

  private removeSub(topic: string, callback: string): boolean {
    const m = this.subs.get(topic);
    if (!m?.delete(callback)) return false;
    if (m.size === 0) this.subs.delete(topic);
    return true;
  }

  private apply(op: JournalOp): void {
    switch (op.op) {
      case 'putTopic':
        this.topics.set(op.topic.url, op.topic);
        break;
      case 'delTopic':
        this.topics.delete(op.url);
        this.subs.delete(op.url);
        break;
      case 'putSub':
        this.subMap(op.sub.topic).set(op.sub.callback, op.sub);
        break;
      case 'delSub':
        this.removeSub(op.topic, op.callback);
        break;
      case 'clear':
        this.topics.clear();
        this.subs.clear();
        break;
    }
  }

  private async replayJournal(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.journalPath, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw e;
    }
    for (const line of text.split('\n')) {
      if (line === '') continue;
      let op: JournalOp;
      try {
        op = JSON.parse(line) as JournalOp;
      } catch {
        // Only the last line can be torn (killed mid-append), and its write was never acknowledged.
        continue;
      }
      this.apply(op);
    }
  }

  private append(op: JournalOp): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ line: JSON.stringify(op) + '\n', resolve, reject });
      if (!this.flushing) void this.startFlush();
    });
  }

  private startFlush(): Promise<void> {
    this.flushing = new Promise<void>((done) => setImmediate(done))
      .then(() => this.writeBatch())
      .finally(() => {
        this.flushing = undefined;
        if (this.queue.length > 0) void this.startFlush();
      });
    return this.flushing;
  }

  private async writeBatch(): Promise<void> {
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 0) return;
    try {
      if (this.journalBytes > this.compactAfterBytes) {
        // The snapshot is taken from memory, which already holds this batch.
        await this.compact();
      } else {
        const data = batch.map((p) => p.line).join('');
        const fh = await this.openJournal();
        await fh.appendFile(data, 'utf8');
        await fh.datasync();
        this.journalBytes += Buffer.byteLength(data);
      }
      for (const p of batch) p.resolve();
    } catch (e) {
      for (const p of batch) p.reject(e);
    }
  }

  private async openJournal(): Promise<FileHandle> {
    this.journal ??= await open(this.journalPath, 'a');
    return this.journal;
  }

  private async compact(): Promise<void> {
    const subscriptions: Subscription[] = [];
    for (const m of this.subs.values()) for (const s of m.values()) subscriptions.push(s);
    this.snapshotDb.data = { topics: [...this.topics.values()], subscriptions };
    await this.snapshotDb.write();
    // A crash between the snapshot's rename and this truncate replays an old journal over a
    // newer snapshot; every op is an absolute put or delete, so the replay is harmless.
    await this.journal?.close();
    this.journal = await open(this.journalPath, 'w');
    await this.journal.datasync();
    this.journalBytes = 0;
  }
}
