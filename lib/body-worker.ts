// The worker thread of BodyThread (body-thread.ts): diffs and signs the bodies the main thread sends.
import { parentPort } from 'node:worker_threads';
import { ownCopy, type WorkerAnswer, type WorkerJob } from './body-thread.js';
import { diffBody } from './feeds/body-diff.js';
import { sign } from './signature.js';

const port = parentPort;
if (!port) throw new Error('body-worker.ts runs as a worker thread');

port.on('message', (job: WorkerJob) => {
  const body = Buffer.from(job.body.buffer, job.body.byteOffset, job.body.byteLength);
  if (job.kind === 'sign') {
    port.postMessage({ id: job.id, signature: sign(job.algorithm, job.secret, body) } satisfies WorkerAnswer);
    return;
  }
  const { hash, diff } = diffBody({ body, contentType: job.contentType, previous: job.previous, ...(job.sameAs && { sameAs: job.sameAs }) });
  if (diff === null || diff === 'same') {
    port.postMessage({ id: job.id, hash, diff } satisfies WorkerAnswer);
    return;
  }
  const { format, fingerprints, known, changedCount } = diff;
  // Sent back as memory of its own that the message moves (a small partial feed may sit in
  // Buffer's shared pool); not at all when it is the whole body, which the main thread holds.
  const partial = diff.body === body ? undefined : ownCopy(diff.body);
  port.postMessage({ id: job.id, hash, diff: { format, fingerprints, known, changedCount, ...(partial && { body: partial }) } } satisfies WorkerAnswer, partial ? [partial.buffer] : []);
});
