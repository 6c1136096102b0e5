// Comparing a read body with what its topic held: the body's MD5, and the diff of its entries
// (entries.ts). Pure: the hub runs it on its main thread for small bodies and on its worker
// thread for big ones (lib/body-thread.ts).
import { hash as digest } from 'node:crypto';
import { diffFeed, type FeedDiff } from './entries.js';

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

export function diffBody(job: DiffJob): BodyDiff {
  const hash = digest('md5', job.body, 'hex');
  if (job.sameAs && job.sameAs.hash === hash && job.sameAs.size === job.body.length) return { hash, diff: 'same' };
  return { hash, diff: diffFeed(job.body, job.contentType, job.previous) };
}
