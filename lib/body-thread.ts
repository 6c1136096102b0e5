// The hub's worker thread for the work that grows with a body: comparing a read body with what
// its topic held (feeds/body-diff.ts: its MD5, the diff of its entries) and signing a WebSub
// delivery (signature.ts). The hub has one JavaScript thread for every protocol: on it, a read of
// a podcast's 1-5 MB archive held every ping, delivery and stream for ~10-25 ms, and a fan-out of
// a 5 MB topic delivered whole to 100 subscribers with secrets ~190 ms (64 signatures of ~3 ms
// in one turn; bench/stalls.ts), while the second core of a small machine sat idle. Bodies under
// BODY_THREAD_MIN_BYTES stay on the main thread, where the trip to the worker and back would
// cost about what it saves.
import { Worker } from 'node:worker_threads';
import type { SignatureAlgorithm } from './config.js';
import { diffBody, type BodyDiff, type DiffJob } from './feeds/body-diff.js';
import { withChanged, type DiffableFormat } from './feeds/entries.js';
import type { Logger } from './log.js';
import { sign } from './signature.js';

/** What crosses to the worker. A body to diff is a copy whose memory moves with the message; one to sign is shared, once per body, by every signature of it. */
export type WorkerJob =
  | { kind: 'diff'; id: number; body: Uint8Array<ArrayBuffer>; contentType: string; previous: string[] | undefined; sameAs: { hash: string; size: number } | undefined }
  | { kind: 'sign'; id: number; body: Uint8Array<SharedArrayBuffer>; algorithm: SignatureAlgorithm; secret: string };

/** A FeedDiff without its entry reader, which only the main thread needs. `body` absent: the partial feed is the whole body. */
export type WorkerDiff = null | 'same' | { format: DiffableFormat; fingerprints: string[]; known: string[]; changedCount: number; body?: Uint8Array<ArrayBuffer> };

export type WorkerAnswer = { id: number; hash: string; diff: WorkerDiff } | { id: number; signature: string };

export type BodyWork = 'diff' | 'sign';

/** A copy of `bytes` in memory of its own, which postMessage can move rather than copy again. */
export function ownCopy(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  return copy;
}

/** After this many worker failures in a row the thread is given up for the process's life. */
const MAX_FAILURES = 3;
/**
 * Jobs on the worker at once; the rest wait on this side, bodies to diff not yet copied: with
 * FETCH_CONCURRENCY reads of big feeds at once, a copy of each on the worker's queue doubled what
 * they held (128 reads of 5 MB, 640 MB more). Two keep the worker busy while an answer comes back.
 */
const ON_WORKER = 2;

/** How a job goes to the worker and comes back. */
interface OnWorker {
  message(id: number): { job: WorkerJob; transfer: ArrayBuffer[] };
  /** Settles the job with the worker's answer; false, leaving it unsettled, for an answer of the other kind. */
  answered(answer: WorkerAnswer): boolean;
}

interface Waiting extends OnWorker {
  work: BodyWork;
  /** Does the job on this thread and settles it. */
  here(): void;
}

/**
 * Runs body work of at least `minBytes` on one worker thread, started at the first such job;
 * smaller ones (and all when `minBytes` is 0) on the caller's thread. A worker that fails (or
 * cannot start) hands its jobs back to the main thread, so no read or delivery fails for it.
 */
export class BodyThread {
  /** Jobs by work and by where they ran, for /metrics. */
  readonly counts: Record<BodyWork, { worker: number; main: number }> = { diff: { worker: 0, main: 0 }, sign: { worker: 0, main: 0 } };
  private worker: Worker | undefined;
  /** Jobs sent to the worker, by id. */
  private readonly pending = new Map<number, Waiting>();
  /** Jobs waiting for one of the ON_WORKER places, in order. */
  private readonly queued: Waiting[] = [];
  /**
   * Bodies being signed on the worker, each shared with it once for the signatures on it or
   * sent after them, and dropped when none is left: kept with the body, a copy of every big
   * version waiting in the outbox (for retries, minutes) doubled what OUTBOX_MAX_BYTES bounds.
   */
  private readonly sharedBodies = new Map<Buffer, { bytes: Uint8Array<SharedArrayBuffer>; users: number }>();
  private nextId = 0;
  private failures = 0;
  private closed = false;

  constructor(
    private readonly minBytes: number,
    private readonly log?: Logger,
    /** The worker's module; a test gives one that fails. */
    private readonly workerUrl: URL = defaultWorkerUrl(),
  ) {}

  /** diffBody(job), on the worker when the body is big. */
  diff(job: DiffJob): Promise<BodyDiff> {
    return this.run(job.body.length, 'diff', () => diffBody(job), (resolve) => ({
      message: (id) => {
        const body = ownCopy(job.body);
        return { job: { kind: 'diff', id, body, contentType: job.contentType, previous: job.previous, sameAs: job.sameAs }, transfer: [body.buffer] };
      },
      answered: (a) => {
        if (!('diff' in a)) return false;
        const d = a.diff;
        resolve({
          hash: a.hash,
          diff: d === null || d === 'same' ? d : withChanged({ ...d, body: d.body ? Buffer.from(d.body.buffer, d.body.byteOffset, d.body.byteLength) : job.body }, job.contentType),
        });
        return true;
      },
    }));
  }

  /** The X-Hub-Signature of `body` (see signature.ts's sign), on the worker when the body is big. */
  sign(algorithm: SignatureAlgorithm, secret: string, body: Buffer): Promise<string> {
    let shared = false;
    const release = (): void => {
      if (shared) this.release(body);
      shared = false;
    };
    const here = (): string => {
      release();
      return sign(algorithm, secret, body);
    };
    return this.run(body.length, 'sign', here, (resolve) => ({
      message: (id) => {
        shared = true;
        return { job: { kind: 'sign', id, body: this.share(body), algorithm, secret }, transfer: [] };
      },
      answered: (a) => {
        release();
        if (!('signature' in a)) return false;
        resolve(a.signature);
        return true;
      },
    }));
  }

  /** Ends the worker; jobs still on it, or waiting for it, are done on this thread. */
  close(): void {
    this.closed = true;
    this.stop();
  }

  /**
   * `here()`'s answer, from this thread or, for a big body, from the worker (`onWorker`, and
   * `here` again if the worker fails it). The jobs of small bodies, nearly all of them (every
   * changed feed's diff, every signed delivery), make no more than the promise.
   */
  private run<T>(size: number, work: BodyWork, here: () => T, onWorker: (resolve: (value: T) => void) => OnWorker): Promise<T> {
    if (this.minBytes === 0 || size < this.minBytes || this.closed || this.failures >= MAX_FAILURES) {
      this.counts[work].main++;
      return new Promise<T>((resolve) => resolve(here()));
    }
    return new Promise<T>((resolve) => {
      this.queued.push({ work, here: () => resolve(here()), ...onWorker(resolve) });
      this.send();
    });
  }

  private here(waiting: Waiting): void {
    this.counts[waiting.work].main++;
    waiting.here();
  }

  private share(body: Buffer): Uint8Array<SharedArrayBuffer> {
    let shared = this.sharedBodies.get(body);
    if (!shared) {
      shared = { bytes: new Uint8Array(new SharedArrayBuffer(body.length)), users: 0 };
      shared.bytes.set(body);
      this.sharedBodies.set(body, shared);
    }
    shared.users++;
    return shared.bytes;
  }

  private release(body: Buffer): void {
    const shared = this.sharedBodies.get(body);
    if (shared && --shared.users === 0) this.sharedBodies.delete(body);
  }

  /** Bodies shared with the worker now (see sharedBodies). */
  get sharedCount(): number {
    return this.sharedBodies.size;
  }

  /** Sends queued jobs while the worker has room. */
  private send(): void {
    while (this.pending.size < ON_WORKER && this.queued.length > 0) {
      const waiting = this.queued.shift()!;
      const worker = (this.worker ??= this.start());
      const id = this.nextId++;
      const { job, transfer } = waiting.message(id);
      // Held open only while it has work: an idle worker never keeps the process from exiting.
      if (this.pending.size === 0) worker.ref();
      this.pending.set(id, waiting);
      worker.postMessage(job, transfer);
    }
  }

  private start(): Worker {
    const worker = startWorker(this.workerUrl);
    worker.unref();
    worker.on('message', (answer: WorkerAnswer) => this.answered(answer));
    worker.on('error', (e) => {
      this.failures++;
      this.log?.warn('body thread failed; its work runs on the main thread', { error: e.message, failures: this.failures });
      this.stop();
    });
    // An exit nobody asked for (a resource limit, process.exit in a dependency) leaves jobs unanswered.
    worker.on('exit', (code) => {
      if (this.worker !== worker) return;
      this.failures++;
      this.log?.warn('body thread exited; its work runs on the main thread', { code, failures: this.failures });
      this.stop();
    });
    return worker;
  }

  private answered(answer: WorkerAnswer): void {
    const waiting = this.pending.get(answer.id);
    if (!waiting) return;
    this.pending.delete(answer.id);
    if (this.pending.size === 0) this.worker?.unref();
    this.failures = 0;
    // An answer of the wrong kind would be a bug of this module: the job is done here instead.
    if (waiting.answered(answer)) this.counts[waiting.work].worker++;
    else this.here(waiting);
    this.send();
  }

  /** Drops the worker. Its unanswered jobs are done here, and the queued ones on a new worker (here once the thread is given up or closed). */
  private stop(): void {
    const worker = this.worker;
    this.worker = undefined;
    if (worker) void worker.terminate();
    const left = [...this.pending.values()];
    this.pending.clear();
    for (const waiting of left) this.here(waiting);
    if (this.closed || this.failures >= MAX_FAILURES) {
      for (const waiting of this.queued.splice(0)) this.here(waiting);
    } else {
      this.send();
    }
  }
}

function defaultWorkerUrl(): URL {
  // Run from sources (the tests, the benchmarks) this module is TypeScript, and so is its worker.
  return new URL(import.meta.url.endsWith('.ts') ? './body-worker.ts' : './body-worker.js', import.meta.url);
}

function startWorker(url: URL): Worker {
  if (!url.pathname.endsWith('.ts')) return new Worker(url);
  // A worker does not inherit the loader the main thread was given (tsx): it registers it first.
  const boot = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(url.href)}); })`;
  return new Worker(boot, { eval: true });
}
