// A version's content as its deliveries use it: read from the store once for all the deliveries
// that need it at the same time, held in memory while any of them runs or its fan-out's first
// pass does, and let go after.
import type { Store } from '../store/store.js';
import { counted, type Job } from './jobs.js';
import type { Content } from './sender.js';

const NO_BODY = Buffer.alloc(0);

/**
 * A version's content for one delivery, which must hand it back with letGo once its request
 * is over (when this resolves to something). Read from the store once for all the deliveries
 * that need it at the same time, and held while any of them runs or the first pass does:
 * each delivery reading its own copy, the retries of a version with many subscribers down (or
 * a resumed fan-out's first deliveries) held up to DELIVERY_CONCURRENCY copies of a body of up
 * to MAX_RESPONSE_BYTES at once, none of them counted in OUTBOX_MAX_BYTES, and read it again
 * for every subscriber. Retries minutes apart still read it each time (see firstPassEnded).
 */
export function useContent(job: Job, store: Pick<Store, 'getOutboxBody'>): Content | Promise<Content | undefined> | undefined {
  if (!counted(job)) return undefined;
  job.users++;
  return job.content ?? awaitContent(job, store);
}

/**
 * useContent for an rssCloud notification, which says only which URL changed: the body is not
 * read from the store for it (up to MAX_RESPONSE_BYTES, for a resumed version or one that
 * waited out its host's pause, to send `url=<topic>`), nor needed there.
 */
export function useBare(job: Job): Content | undefined {
  if (!counted(job)) return undefined;
  job.users++;
  const { topic, version, contentType } = job.entry;
  return job.content ?? { topic, version, contentType, body: NO_BODY };
}

/** A delivery is done with its version's content (see useContent). */
export function letGo(job: Job): void {
  if (--job.users === 0 && job.first.pending === 0) job.content = undefined;
}

/** Every subscription has had its first attempt at the version (see Notifier.settleFirst). */
export function firstPassEnded(job: Job): void {
  // Only retries are left, minutes apart: the body is read again for each rather than held
  // in memory for as long as they last, for every version of every topic with a subscriber
  // down. A delivery still under way holds it until it lets go (see useContent).
  if (job.users === 0) job.content = undefined;
}

async function awaitContent(job: Job, store: Pick<Store, 'getOutboxBody'>): Promise<Content | undefined> {
  let content: Content | undefined;
  try {
    content = await (job.reading ??= readContent(job, store));
  } finally {
    if (!content || !counted(job)) letGo(job);
  }
  return content && counted(job) ? content : undefined;
}

async function readContent(job: Job, store: Pick<Store, 'getOutboxBody'>): Promise<Content | undefined> {
  const { topic, version, contentType } = job.entry;
  try {
    const body = await store.getOutboxBody(topic, version);
    if (!body || !counted(job)) return undefined;
    const content: Content = { topic, version, body, contentType };
    if (job.users > 0 || job.first.pending > 0) job.content = content;
    return content;
  } finally {
    job.reading = undefined;
  }
}
