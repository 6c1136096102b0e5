// The embedded store's memory: every record, partitioned the way the snapshot is sharded, with
// running counters (counts() is O(1) in the number of records) and a dirty flag per shard.
import { callbackHost, type OutboxEntry, type PendingRead, type PendingVerification, type Protocol, type Site, type Subscription, type Topic } from '../model.js';
import type { JournalOp } from './journal.js';
import type { TopicSubscriptions } from './store.js';
import { SHARD_COUNT, SHARD_FORMAT, shardOf, shardOps, type ShardFile } from './snapshot-file.js';

/** Everything kept about one topic URL: the topic record, its subscriptions, its outbox. */
interface TopicEntry {
  /** The one copy of the URL string that the records of this entry share. */
  url: string;
  topic: Topic | undefined;
  subs: Map<string, Subscription>;
  outbox: Map<number, OutboxEntry> | undefined;
  /** Bodies of outbox entries kept inline (base64), by version; the others are in content/. */
  bodies: Map<number, string> | undefined;
  /** Sizes of the bodies in content/, by version, where their entries recorded one. */
  sizes: Map<number, number> | undefined;
}

class Partition {
  readonly entries = new Map<string, TopicEntry>();
  readonly verifications = new Map<string, PendingVerification>();
  /** Sites by exact URL, sharded like topics (by a hash of the URL) but kept apart from them. */
  readonly sites = new Map<string, Site>();
  /** Reads owed to topics, by topic URL (sharded as topics are, but kept apart from their entries). */
  readonly pendingReads = new Map<string, PendingRead>();
  /** Changed since its shard file was last written. */
  dirty = false;
}

export class MemoryState {
  private readonly parts: Partition[] = Array.from({ length: SHARD_COUNT }, () => new Partition());
  private topicCount = 0;
  private subCount = 0;
  private readonly byProtocol = new Map<string, number>();
  /** Subscriptions per callback host (host:port), for the per-host subscription limit. */
  private readonly byHost = new Map<string, number>();
  /** Shared protocol strings, so 100k subscriptions do not hold 100k copies of 'http-post'. */
  private readonly protocols = new Map<string, Protocol>();
  /** Ids of the pending verifications of each (topic, callback), by pairKey (see Store.supersedeOlderVerifications). */
  private readonly verificationsByPair = new Map<string, Set<string>>();

  // --- reads -------------------------------------------------------------------------------

  getTopic(url: string): Topic | undefined {
    return this.entry(url)?.topic;
  }

  getSubscription(topic: string, callback: string): Subscription | undefined {
    return this.entry(topic)?.subs.get(callback);
  }

  subscriptionsOf(topic: string): Iterable<Subscription> {
    return this.entry(topic)?.subs.values() ?? [];
  }

  // The lists are arrays of the stored records themselves, gathered in one synchronous pass
  // (~10 ms for 100k), so they are one consistent set of records. A write stores a new object,
  // except a delivery's counters (subStats), set in place: a caller copying them later, a slice
  // at a time, may see counters newer than the pass, never a record twice or one missing.

  topicRefs(): Topic[] {
    const out: Topic[] = [];
    for (const p of this.parts) for (const e of p.entries.values()) if (e.topic) out.push(e.topic);
    return out;
  }

  subscriptionRefs(): Subscription[] {
    const out: Subscription[] = [];
    for (const p of this.parts) for (const e of p.entries.values()) for (const s of e.subs.values()) out.push(s);
    return out;
  }

  hasOutbox(topic: string, version: number): boolean {
    return this.entry(topic)?.outbox?.has(version) ?? false;
  }

  /** The inline body (base64) of an outbox entry; undefined when its body is a file in content/. */
  inlineBody(topic: string, version: number): string | undefined {
    return this.entry(topic)?.bodies?.get(version);
  }

  /** The size recorded for an outbox entry's body in content/, to tell a truncated file. */
  fileSize(topic: string, version: number): number | undefined {
    return this.entry(topic)?.sizes?.get(version);
  }

  /** One topic's outbox entries (references, in no particular order). */
  outboxRefsOf(topic: string): OutboxEntry[] {
    const outbox = this.entry(topic)?.outbox;
    return outbox ? [...outbox.values()] : [];
  }

  outboxRefs(): OutboxEntry[] {
    const out: OutboxEntry[] = [];
    for (const p of this.parts) for (const e of p.entries.values()) if (e.outbox) for (const o of e.outbox.values()) out.push(o);
    return out;
  }

  siteRefs(): Site[] {
    const out: Site[] = [];
    for (const p of this.parts) for (const s of p.sites.values()) out.push(s);
    return out;
  }

  getSite(url: string): Site | undefined {
    return this.parts[shardOf(url)]!.sites.get(url);
  }

  hasVerification(id: string): boolean {
    return this.parts[shardOf(id)]!.verifications.has(id);
  }

  /** The pending verifications of one (topic, callback), as stored. */
  verificationsOf(topic: string, callback: string): PendingVerification[] {
    const out: PendingVerification[] = [];
    for (const id of this.verificationsByPair.get(pairKey(topic, callback)) ?? []) {
      const v = this.parts[shardOf(id)]!.verifications.get(id);
      if (v) out.push(v);
    }
    return out;
  }

  verificationRefs(): PendingVerification[] {
    const out: PendingVerification[] = [];
    for (const p of this.parts) for (const v of p.verifications.values()) out.push(v);
    return out;
  }

  getPendingRead(topic: string): PendingRead | undefined {
    return this.parts[shardOf(topic)]!.pendingReads.get(topic);
  }

  pendingReadRefs(): PendingRead[] {
    const out: PendingRead[] = [];
    for (const p of this.parts) for (const r of p.pendingReads.values()) out.push(r);
    return out;
  }

  subscriptionsOfHost(host: string): number {
    return this.byHost.get(host) ?? 0;
  }

  /** Every topic URL with at least one subscription, and how many: one pass over the topics. */
  subscribedTopics(): TopicSubscriptions[] {
    const out: TopicSubscriptions[] = [];
    for (const p of this.parts) for (const e of p.entries.values()) if (e.subs.size > 0) out.push({ topic: e.url, subscriptions: e.subs.size });
    return out;
  }

  subscriptionCountOf(topic: string): number {
    return this.entry(topic)?.subs.size ?? 0;
  }

  counts(): { topics: number; subscriptions: number; byProtocol: Record<string, number> } {
    const byProtocol: Record<string, number> = {};
    for (const [p, n] of this.byProtocol) if (n > 0) byProtocol[p] = n;
    return { topics: this.topicCount, subscriptions: this.subCount, byProtocol };
  }

  // --- writes ------------------------------------------------------------------------------

  /**
   * Applies one op; the store calls it for live writes and for replay alike. The op's records
   * are stored as they are (the caller hands over copies), and mark their shard dirty.
   */
  apply(op: JournalOp): void {
    switch (op.op) {
      case 'putTopic': {
        const e = this.entryFor(op.topic.url, true);
        op.topic.url = e.url;
        if (!e.topic) this.topicCount++;
        e.topic = op.topic;
        break;
      }
      case 'checkTopic': {
        const e = this.entryFor(op.topic.url, false);
        if (!e?.topic) break;
        const { fingerprints } = e.topic;
        op.topic.url = e.url;
        e.topic = fingerprints === undefined ? op.topic : { ...op.topic, fingerprints };
        break;
      }
      case 'delTopic': {
        const e = this.entryFor(op.url, false);
        if (!e) break;
        if (e.topic) this.topicCount--;
        e.topic = undefined;
        for (const s of e.subs.values()) this.uncount(s);
        e.subs.clear();
        this.prune(e);
        break;
      }
      case 'putSub': {
        const e = this.entryFor(op.sub.topic, true);
        const sub = op.sub;
        sub.topic = e.url;
        sub.protocol = this.protocol(sub.protocol);
        const old = e.subs.get(sub.callback);
        e.subs.set(sub.callback, sub);
        // A subscription written again (every delivery records its outcome) leaves every count
        // as it was: same callback, so same host; only a change of protocol moves one.
        if (old && old.protocol === sub.protocol) break;
        if (old) this.uncount(old);
        this.subCount++;
        this.byProtocol.set(sub.protocol, (this.byProtocol.get(sub.protocol) ?? 0) + 1);
        const host = callbackHost(sub.callback);
        this.byHost.set(host, (this.byHost.get(host) ?? 0) + 1);
        break;
      }
      case 'subStats': {
        // Set on the records in place: callers only ever get copies of them. One absent
        // (removed since, later in the journal) has nothing to set.
        const e = this.entryFor(op.topic, false);
        if (!e) break;
        for (const [callback, ctUpdates, ctErrors, ctConsecutiveErrors, whenLastUpdate, whenLastError, deliveredVersion] of op.rows) {
          const sub = e.subs.get(callback);
          if (!sub) continue;
          sub.ctUpdates = ctUpdates;
          sub.ctErrors = ctErrors;
          sub.ctConsecutiveErrors = ctConsecutiveErrors;
          sub.whenLastUpdate = whenLastUpdate;
          sub.whenLastError = whenLastError;
          sub.deliveredVersion = deliveredVersion;
        }
        break;
      }
      case 'delSub': {
        const e = this.entryFor(op.topic, false);
        const old = e?.subs.get(op.callback);
        if (!e || !old) break;
        e.subs.delete(op.callback);
        this.uncount(old);
        this.prune(e);
        break;
      }
      case 'putOutbox': {
        const e = this.entryFor(op.entry.topic, true);
        op.entry.topic = e.url;
        (e.outbox ??= new Map()).set(op.entry.version, op.entry);
        if (op.body !== undefined) (e.bodies ??= new Map()).set(op.entry.version, op.body);
        else if (e.bodies?.delete(op.entry.version) && e.bodies.size === 0) e.bodies = undefined;
        if (op.size !== undefined) (e.sizes ??= new Map()).set(op.entry.version, op.size);
        else if (e.sizes?.delete(op.entry.version) && e.sizes.size === 0) e.sizes = undefined;
        break;
      }
      case 'delOutbox': {
        const e = this.entryFor(op.topic, false);
        if (!e?.outbox?.delete(op.version)) break;
        if (e.outbox.size === 0) e.outbox = undefined;
        if (e.bodies?.delete(op.version) && e.bodies.size === 0) e.bodies = undefined;
        if (e.sizes?.delete(op.version) && e.sizes.size === 0) e.sizes = undefined;
        this.prune(e);
        break;
      }
      case 'putVerification': {
        this.deleteVerification(op.v.id);
        const p = this.parts[shardOf(op.v.id)]!;
        p.verifications.set(op.v.id, op.v);
        const key = pairKey(op.v.topic, op.v.callback);
        let ids = this.verificationsByPair.get(key);
        if (!ids) this.verificationsByPair.set(key, (ids = new Set()));
        ids.add(op.v.id);
        p.dirty = true;
        break;
      }
      case 'delVerification':
        this.deleteVerification(op.id);
        break;
      case 'putPendingRead': {
        const p = this.parts[shardOf(op.read.topic)]!;
        p.pendingReads.set(op.read.topic, op.read);
        p.dirty = true;
        break;
      }
      case 'delPendingRead': {
        const p = this.parts[shardOf(op.topic)]!;
        if (p.pendingReads.delete(op.topic)) p.dirty = true;
        break;
      }
      case 'putSite': {
        const p = this.parts[shardOf(op.site.url)]!;
        p.sites.set(op.site.url, op.site);
        p.dirty = true;
        break;
      }
      case 'delSite': {
        const p = this.parts[shardOf(op.url)]!;
        if (p.sites.delete(op.url)) p.dirty = true;
        break;
      }
      case 'clear':
        for (const p of this.parts) {
          p.entries.clear();
          p.verifications.clear();
          p.sites.clear();
          p.pendingReads.clear();
          p.dirty = true;
        }
        this.topicCount = 0;
        this.subCount = 0;
        this.byProtocol.clear();
        this.byHost.clear();
        this.verificationsByPair.clear();
        break;
    }
  }

  /**
   * Loads shard k's file, which shardProblem has passed. The shard stays clean (its file already
   * says this); a record that belongs to another shard (a file from elsewhere) leaves that other
   * shard dirty.
   */
  load(data: ShardFile, k: number): void {
    const wasDirty = this.parts[k]!.dirty;
    for (const op of shardOps(data)) this.apply(op);
    this.parts[k]!.dirty = wasDirty;
  }

  // --- shards ------------------------------------------------------------------------------

  dirtyShards(): number[] {
    const out: number[] = [];
    this.parts.forEach((p, k) => p.dirty && out.push(k));
    return out;
  }

  markDirty(k: number): void {
    this.parts[k]!.dirty = true;
  }

  markAllDirty(): void {
    for (const p of this.parts) p.dirty = true;
  }

  /**
   * The records of shard k as they are now, and the shard marked clean: a change after this
   * call marks it dirty again. Synchronous, so the result is one consistent state of the shard.
   */
  takeShard(k: number): ShardFile {
    const p = this.parts[k]!;
    p.dirty = false;
    const data: ShardFile = {
      format: SHARD_FORMAT,
      shard: k,
      shards: SHARD_COUNT,
      topics: [],
      subscriptions: [],
      outbox: [],
      verifications: [...p.verifications.values()],
      sites: [...p.sites.values()],
      // Only when there are any: most shards have none, and their files stay as they were.
      ...(p.pendingReads.size > 0 && { pendingReads: [...p.pendingReads.values()] }),
    };
    for (const e of p.entries.values()) {
      if (e.topic) data.topics.push(e.topic);
      for (const s of e.subs.values()) data.subscriptions.push(s);
      if (e.outbox) {
        for (const o of e.outbox.values()) {
          const body = e.bodies?.get(o.version);
          const size = e.sizes?.get(o.version);
          data.outbox.push(body !== undefined ? { ...o, body } : size !== undefined ? { ...o, size } : o);
        }
      }
    }
    return data;
  }

  // --- internals ---------------------------------------------------------------------------

  private entry(url: string): TopicEntry | undefined {
    return this.parts[shardOf(url)]!.entries.get(url);
  }

  private entryFor(url: string, create: true): TopicEntry;
  private entryFor(url: string, create: false): TopicEntry | undefined;
  private entryFor(url: string, create: boolean): TopicEntry | undefined {
    const p = this.parts[shardOf(url)]!;
    let e = p.entries.get(url);
    if (!e && create) {
      e = { url, topic: undefined, subs: new Map(), outbox: undefined, bodies: undefined, sizes: undefined };
      p.entries.set(url, e);
    }
    if (e) p.dirty = true;
    return e;
  }

  private deleteVerification(id: string): void {
    const p = this.parts[shardOf(id)]!;
    const v = p.verifications.get(id);
    if (!v) return;
    p.verifications.delete(id);
    p.dirty = true;
    const key = pairKey(v.topic, v.callback);
    const ids = this.verificationsByPair.get(key);
    if (ids?.delete(id) && ids.size === 0) this.verificationsByPair.delete(key);
  }

  private prune(e: TopicEntry): void {
    if (!e.topic && e.subs.size === 0 && !e.outbox) this.parts[shardOf(e.url)]!.entries.delete(e.url);
  }

  private uncount(s: Subscription): void {
    this.subCount--;
    this.byProtocol.set(s.protocol, (this.byProtocol.get(s.protocol) ?? 0) - 1);
    const host = callbackHost(s.callback);
    const n = (this.byHost.get(host) ?? 0) - 1;
    if (n > 0) this.byHost.set(host, n);
    else this.byHost.delete(host);
  }

  private protocol(p: Protocol): Protocol {
    let shared = this.protocols.get(p);
    if (!shared) {
      shared = p;
      this.protocols.set(p, p);
    }
    return shared;
  }
}

/** One string per (topic, callback), unambiguous whatever characters the URLs hold. */
function pairKey(topic: string, callback: string): string {
  return JSON.stringify([topic, callback]);
}
