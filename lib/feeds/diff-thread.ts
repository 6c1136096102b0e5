// Comparing a read body with what the topic held: its MD5, and the diff of its entries. Big
// bodies are compared on a worker thread of their own. The hub has one JavaScript thread for
// every protocol, and the comparison is the one piece of a read that grows with the feed: a
// podcast's archive of 1 to 5 MB held every ping, delivery and stream for ~10-40 ms per read
// (bench/stalls.ts), while the second core of a small machine sat idle. Small bodies stay on
// the main thread: under ~1 ms, their trip to the worker and back would cost about as much.
import { hash as digest } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import type { Logger } from '../log.js';
import { withChanged, type DiffableFormat, type FeedDiff, diffFeed } from './entries.js';

/** A body whose fingerprints this process made, so that the same bytes need no diff (see TopicChecker.madeHere). */
export interface MadeFrom {
  hash: string;
  size: number;
  contentType: string;
}

export interface DiffJob {
  body: Buffer;
  contentType: string;
  /** The fingerprints the topic holds; undefined when its entries were never known. */
  previous: string[] | undefined;
  /** Given when the topic's fingerprints were made here from a body of this hash and size: such bytes are not diffed again. */
  sameAs?: { hash: string; size: number };
}

export interface BodyDiff {
  /** The body's MD5, hex. */
  hash: string;
  /** 'same': the very bytes `sameAs` named, not diffed. null: not a feed that can be diffed. */
  diff: FeedDiff | null | 'same';
}

/** The comparison itself, on whichever thread runs it. */
export function diffBody(job: DiffJob): BodyDiff {
  const hash = digest('md5', job.body, 'hex');
  if (job.sameAs && job.sameAs.hash === hash && job.sameAs.size === job.body.length) return { hash, diff: 'same' };
  return { hash, diff: diffFeed(job.body, job.contentType, job.previous) };
}

/** What crosses to the worker: the body is a copy whose memory moves with the message. */
export interface WorkerJob {
  id: number;
  body: Uint8Array<ArrayBuffer>;
  contentType: string;
  previous: string[] | undefined;
  sameAs: { hash: string; size: number } | undefined;
}

/** What comes back: a FeedDiff without its entry reader, which only the main thread needs. `body` absent: the partial feed is the whole body. */
export interface WorkerAnswer {
  id: number;
  hash: string;
  diff: null | 'same' | { format: DiffableFormat; fingerprints: string[]; known: string[]; changedCount: number; body?: Uint8Array<ArrayBuffer> };
}

/** A copy of `bytes` in memory of its own, which postMessage can move rather than copy again. */
export function ownCopy(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  return copy;
}

/** After this many worker failures in a row the thread is given up for the process's life. */
const MAX_FAILURES = 3;
/**
 * Jobs on the worker at once; the rest wait on this side, their bodies not yet copied: with
 * FETCH_CONCURRENCY reads of big feeds at once, a copy of each on the worker's queue doubled what
 * they held (128 reads of 5 MB, 640 MB more). Two keep the worker busy while an answer comes back.
 */
const ON_WORKER = 2;

/**
 * Runs diffBody for bodies of at least `minBytes` on one worker thread, started at the first
 * such body; smaller ones (and all when `minBytes` is 0) on the caller's thread. A worker that
 * fails (or cannot start) hands its jobs back to the main thread, so a read never fails for it.
 */
export class DiffThread {
  /** Comparisons by where they ran, for /metrics. */
  readonly counts = { worker: 0, main: 0 };
  private worker: Worker | undefined;
  /** Jobs sent to the worker, by id. */
  private readonly pending = new Map<number, Waiting>();
  /** Jobs waiting for one of the ON_WORKER places, in order. */
  private readonly queued: Waiting[] = [];
  private nextId = 0;
  private failures = 0;
  private closed = false;

  constructor(
    private readonly minBytes: number,
    private readonly log?: Logger,
    /** The worker's module; a test gives one that fails. */
    private readonly workerUrl: URL = defaultWorkerUrl(),
  ) {}

  diff(job: DiffJob): Promise<BodyDiff> {
    if (this.minBytes === 0 || job.body.length < this.minBytes || this.closed || this.failures >= MAX_FAILURES) return Promise.resolve(this.here(job));
    return new Promise((resolve) => {
      this.queued.push({ job, resolve });
      this.send();
    });
  }

  /** Sends queued jobs while the worker has room. */
  private send(): void {
    while (this.pending.size < ON_WORKER && this.queued.length > 0) {
      const waiting = this.queued.shift()!;
      const worker = (this.worker ??= this.start());
      const id = this.nextId++;
      const { job } = waiting;
      const body = ownCopy(job.body);
      const message: WorkerJob = { id, body, contentType: job.contentType, previous: job.previous, sameAs: job.sameAs };
      // Held open only while it has work: an idle worker never keeps the process from exiting.
      if (this.pending.size === 0) worker.ref();
      this.pending.set(id, waiting);
      worker.postMessage(message, [body.buffer]);
    }
  }

  /** Ends the worker; jobs still on it are done on this thread. */
  close(): void {
    this.closed = true;
    this.stop();
  }

  private here(job: DiffJob): BodyDiff {
    this.counts.main++;
    return diffBody(job);
  }

  private start(): Worker {
    const worker = startWorker(this.workerUrl);
    worker.unref();
    worker.on('message', (answer: WorkerAnswer) => this.answered(answer));
    worker.on('error', (e) => {
      this.failures++;
      this.log?.warn('feed diff thread failed; its comparisons run on the main thread', { error: e.message, failures: this.failures });
      this.stop();
    });
    // An exit nobody asked for (a resource limit, process.exit in a dependency) leaves jobs unanswered.
    worker.on('exit', (code) => {
      if (this.worker !== worker) return;
      this.failures++;
      this.log?.warn('feed diff thread exited; its comparisons run on the main thread', { code, failures: this.failures });
      this.stop();
    });
    return worker;
  }

  private answered(answer: WorkerAnswer): void {
    const job = this.pending.get(answer.id);
    if (!job) return;
    this.pending.delete(answer.id);
    if (this.pending.size === 0) this.worker?.unref();
    this.failures = 0;
    this.counts.worker++;
    const d = answer.diff;
    const diff = d === null || d === 'same' ? d : withChanged({ ...d, body: d.body ? Buffer.from(d.body.buffer, d.body.byteOffset, d.body.byteLength) : job.job.body }, job.job.contentType);
    job.resolve({ hash: answer.hash, diff });
    this.send();
  }

  /** Drops the worker. Its unanswered jobs are done here, and the queued ones on a new worker (here once the thread is given up or closed). */
  private stop(): void {
    const worker = this.worker;
    this.worker = undefined;
    if (worker) void worker.terminate();
    const left = [...this.pending.values()];
    this.pending.clear();
    for (const { job, resolve } of left) resolve(this.here(job));
    if (this.closed || this.failures >= MAX_FAILURES) {
      for (const { job, resolve } of this.queued.splice(0)) resolve(this.here(job));
    } else {
      this.send();
    }
  }
}

interface Waiting {
  job: DiffJob;
  resolve: (d: BodyDiff) => void;
}

function defaultWorkerUrl(): URL {
  // Run from sources (the tests, the benchmarks) this module is TypeScript, and so is its worker.
  return new URL(import.meta.url.endsWith('.ts') ? './diff-worker.ts' : './diff-worker.js', import.meta.url);
}

function startWorker(url: URL): Worker {
  if (!url.pathname.endsWith('.ts')) return new Worker(url);
  // A worker does not inherit the loader the main thread was given (tsx): it registers it first.
  const boot = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(url.href)}); })`;
  return new Worker(boot, { eval: true });
}
