// BodyThread: big bodies compared or signed on a worker thread give the very answer the main
// thread gives, without holding the main thread's event loop; a worker that fails or dies hands
// its work back, so no read or delivery fails for it. The answers over real HTTP are proven by
// the "feeds in the wild" suite (test/feed-changes.test.ts) and the WebSub subscribers' suite
// (test/websub-subscribers.test.ts, their own signature checks), whose hubs send every body to
// the worker.
import { expect } from 'chai';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { BodyThread } from '../lib/body-thread.js';
import { diffBody, type BodyDiff, type DiffJob } from '../lib/feeds/body-diff.js';
import { sign } from '../lib/signature.js';
import { createLogger } from '../lib/log.js';
import { sleep } from './helpers/recorder.js';
import { countTurns } from './helpers/turns.js';
import { until } from './helpers/until.js';

const rss = (ids: string[], text = 'Notes.'): Buffer =>
  Buffer.from(
    `<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel><title>Show</title>${ids
      .map((id) => `<item><title>Episode ${id}</title><guid>${id}</guid><description>${text}</description></item>`)
      .join('\n')}</channel></rss>\n`,
  );
const RSS = 'application/rss+xml; charset=utf-8';
const atom = (ids: string[]): Buffer =>
  Buffer.from(`<feed xmlns="http://www.w3.org/2005/Atom"><title>Blog</title>${ids.map((id) => `<entry><id>urn:${id}</id><title>Post ${id}</title><content type="html">&lt;p&gt;${id}&lt;/p&gt;</content></entry>`).join('')}</feed>`);
const json = (ids: string[]): Buffer => Buffer.from(JSON.stringify({ version: 'https://jsonfeed.org/version/1.1', title: 'J', items: ids.map((id) => ({ id, content_text: `item ${id}` })) }));

/** What a diff says, its entry reader read. */
function plain(d: BodyDiff): unknown {
  if (d.diff === null || d.diff === 'same') return d;
  const { changed, body, ...rest } = d.diff;
  return { hash: d.hash, ...rest, body: body.toString('latin1'), changed: changed() };
}

/** How many turns the event loop takes while `work` runs. */
async function turnsDuring<T>(work: Promise<T>): Promise<{ turns: number; result: T }> {
  const counter = countTurns();
  const result = await work;
  return { turns: counter.stop(), result };
}

describe('BodyThread: big bodies compared and signed on a worker thread', function () {
  // The first job starts the worker, which loads the diff's modules (from sources, under tsx).
  this.timeout(20_000);
  let thread: BodyThread;
  beforeEach(() => {
    thread = new BodyThread(1);
  });
  afterEach(() => thread.close());

  it('gives the answer the main thread gives: RSS, Atom and JSON Feed, first read and next, a page that is no feed, the same bytes again', async () => {
    const first = diffBody({ body: rss(['1', '2']), contentType: RSS, previous: undefined });
    const jobs: DiffJob[] = [
      { body: rss(['1', '2']), contentType: RSS, previous: undefined },
      { body: rss(['3', '1', '2']), contentType: RSS, previous: first.diff && first.diff !== 'same' ? first.diff.known : [] },
      { body: rss(['4', '3', '1'], 'Édition spéciale.'), contentType: RSS, previous: ['aaaaaaaaaaaa'] },
      { body: atom(['a', 'b']), contentType: 'application/atom+xml', previous: undefined },
      { body: atom(['c', 'a', 'b']), contentType: 'application/atom+xml', previous: [] },
      { body: json(['x', 'y']), contentType: 'application/feed+json', previous: ['000000000000'] },
      { body: Buffer.from('<!doctype html><html><body>Database error</body></html>'), contentType: 'text/html', previous: ['000000000000'] },
      { body: rss(['1', '2']), contentType: RSS, previous: [], sameAs: { hash: first.hash, size: rss(['1', '2']).length } },
      { body: rss(['1', '2', '5']), contentType: RSS, previous: [], sameAs: { hash: first.hash, size: rss(['1', '2']).length } },
    ];
    for (const [i, job] of jobs.entries()) {
      const here = diffBody(job);
      const there = await thread.diff(job);
      expect(plain(there), `job ${i}`).to.deep.equal(plain(here));
    }
    expect(thread.counts).to.deep.equal({ diff: { worker: jobs.length, main: 0 }, sign: { worker: 0, main: 0 } });
    // Kinds of answer the list covers: a diff, none, and the same bytes.
    const answers = jobs.map((j) => diffBody(j).diff);
    expect(answers).to.include(null);
    expect(answers).to.include('same');
  });

  it('a first read hands back the body it was given as the partial feed (nothing cut), not a copy', async () => {
    const job = { body: rss(['1', '2']), contentType: RSS, previous: undefined };
    const d = await thread.diff(job);
    expect(d.diff && d.diff !== 'same' && d.diff.body).to.equal(job.body);
  });

  it('the event loop turns while the worker compares a big body; on the main thread it does not', async () => {
    const ids = Array.from({ length: 2000 }, (_, i) => `episode-${i}`);
    const body = rss(ids, 'Show notes, chapter by chapter. '.repeat(60));
    const job: DiffJob = { body, contentType: RSS, previous: ['000000000000'] };
    await thread.diff({ body: rss(['warm-up']), contentType: RSS, previous: [] }); // the worker started
    const there = await turnsDuring(thread.diff(job));
    expect(there.turns).to.be.greaterThan(0);
    const inline = new BodyThread(body.length + 1);
    const here = await turnsDuring(inline.diff(job));
    expect(here.turns).to.equal(0);
    expect(inline.counts.diff).to.deep.equal({ worker: 0, main: 1 });
    expect(plain(there.result)).to.deep.equal(plain(here.result));
    expect(thread.counts.diff.worker).to.equal(2);
  });

  it('jobs sent at once each get their own answer', async () => {
    const jobs: DiffJob[] = Array.from({ length: 6 }, (_, i) => ({ body: rss(Array.from({ length: i + 1 }, (_, k) => `${i}-${k}`)), contentType: RSS, previous: i % 2 === 0 ? undefined : [] }));
    const answers = await Promise.all(jobs.map((j) => thread.diff(j)));
    answers.forEach((a, i) => expect(plain(a), `job ${i}`).to.deep.equal(plain(diffBody(jobs[i]!))));
    expect(thread.counts.diff.worker).to.equal(6);
  });

  it('signs as the main thread signs, with each algorithm and several bodies at once', async () => {
    const body = rss(['1', '2', '3'], 'Signed notes.');
    for (const algorithm of ['sha1', 'sha256', 'sha384', 'sha512'] as const) {
      for (const secret of ['s3cret', 'ünïcode secret']) expect(await thread.sign(algorithm, secret, body), `${algorithm} ${secret}`).to.equal(sign(algorithm, secret, body));
    }
    // Signatures of several bodies at once each go with their own body.
    const bodies = [rss(['a']), rss(['b']), rss(['c'])];
    const signed = await Promise.all(bodies.map((b, i) => thread.sign('sha256', `k${i}`, b)));
    expect(signed).to.deep.equal(bodies.map((b, i) => sign('sha256', `k${i}`, b)));
    expect(thread.counts.sign).to.deep.equal({ worker: 11, main: 0 });
  });

  it('the event loop turns while the worker signs a big body', async () => {
    const body = Buffer.alloc(8 * 1024 * 1024, 'x');
    await thread.sign('sha256', 'warm-up', rss(['w'])); // the worker started
    const there = await turnsDuring(thread.sign('sha256', 'k', body));
    expect(there.turns).to.be.greaterThan(0);
    expect(there.result).to.equal(sign('sha256', 'k', body));
    const inline = new BodyThread(body.length + 1);
    const here = await turnsDuring(inline.sign('sha256', 'k', body));
    expect(here.turns).to.equal(0);
    expect(inline.counts.sign).to.deep.equal({ worker: 0, main: 1 });
  });

  it('bodies under the bound, and all when the bound is 0, stay on the main thread', async () => {
    const small = new BodyThread(1024);
    const off = new BodyThread(0);
    try {
      await small.diff({ body: rss(['1']), contentType: RSS, previous: undefined });
      await off.diff({ body: rss(Array.from({ length: 50 }, (_, i) => String(i))), contentType: RSS, previous: undefined });
      expect(small.counts.diff).to.deep.equal({ worker: 0, main: 1 });
      expect(off.counts.diff).to.deep.equal({ worker: 0, main: 1 });
    } finally {
      small.close();
      off.close();
    }
  });

  describe('a worker that fails', () => {
    let dir: string;
    before(async () => {
      dir = await mkdtemp(path.join(os.tmpdir(), 'pushbutton-body-thread-'));
      await writeFile(path.join(dir, 'throws.mjs'), "throw new Error('cannot start');\n");
      await writeFile(path.join(dir, 'exits.mjs'), "import { parentPort } from 'node:worker_threads';\nparentPort.on('message', () => process.exit(3));\n");
      await writeFile(path.join(dir, 'silent.mjs'), "import { parentPort } from 'node:worker_threads';\nparentPort.on('message', () => {});\n");
      // Answers a signature job with the first byte of the body it sees, after adding one to it
      // where it sees it: what shares memory with the main thread's copy shows there.
      await writeFile(
        path.join(dir, 'marks.mjs'),
        "import { parentPort } from 'node:worker_threads';\nparentPort.on('message', (job) => { const seen = job.body[0]; job.body[0] = seen + 1; parentPort.postMessage({ id: job.id, signature: String(seen) }); });\n",
      );
      // Answers every job as a signature, whatever it asked.
      await writeFile(path.join(dir, 'crossed.mjs'), "import { parentPort } from 'node:worker_threads';\nparentPort.on('message', (job) => parentPort.postMessage({ id: job.id, signature: 'sha1=0' }));\n");
      // Notes each job it is sent in a file, and answers none.
      await writeFile(
        path.join(dir, 'notes.mjs'),
        `import { appendFileSync } from 'node:fs';\nimport { parentPort } from 'node:worker_threads';\nparentPort.on('message', (job) => appendFileSync(${JSON.stringify(path.join(dir, 'sent'))}, job.id + '\\n'));\n`,
      );
    });
    after(async () => {
      await rm(dir, { recursive: true, force: true });
    });
    const job = (): DiffJob => ({ body: rss(['2', '1']), contentType: RSS, previous: [] });
    const warnings = (): { lines: string[]; log: ReturnType<typeof createLogger> } => {
      const lines: string[] = [];
      return { lines, log: createLogger('warn', (l) => lines.push(l)) };
    };

    it('one that cannot start: its jobs are done on the main thread, and after three failures in a row no worker is started again', async () => {
      const { lines, log } = warnings();
      const failing = new BodyThread(1, log, pathToFileURL(path.join(dir, 'throws.mjs')));
      try {
        for (let i = 0; i < 5; i++) expect(plain(await failing.diff(job()))).to.deep.equal(plain(diffBody(job())));
        expect(failing.counts.diff).to.deep.equal({ worker: 0, main: 5 });
        expect(await failing.sign('sha1', 'k', job().body)).to.equal(sign('sha1', 'k', job().body));
        expect(failing.counts.sign).to.deep.equal({ worker: 0, main: 1 });
        expect(lines.filter((l) => l.includes('body thread failed'))).to.have.length(3);
      } finally {
        failing.close();
      }
    });

    it('one that exits with jobs on it: they are done on the main thread', async () => {
      const { lines, log } = warnings();
      const exiting = new BodyThread(1, log, pathToFileURL(path.join(dir, 'exits.mjs')));
      try {
        const [a, b, signature] = await Promise.all([exiting.diff(job()), exiting.diff(job()), exiting.sign('sha256', 'k', job().body)]);
        for (const answer of [a, b]) expect(plain(answer!)).to.deep.equal(plain(diffBody(job())));
        expect(signature).to.equal(sign('sha256', 'k', job().body));
        expect(exiting.counts).to.deep.equal({ diff: { worker: 0, main: 2 }, sign: { worker: 0, main: 1 } });
        expect(lines.some((l) => l.includes('body thread exited'))).to.equal(true);
      } finally {
        exiting.close();
      }
    });

    it('has at most two bodies on the worker at once: the rest wait uncopied, and are done on the main thread if it closes first', async () => {
      const noting = new BodyThread(1, undefined, pathToFileURL(path.join(dir, 'notes.mjs')));
      const sent = async (): Promise<string[]> => (await readFile(path.join(dir, 'sent'), 'utf8').catch(() => '')).split('\n').filter((l) => l !== '');
      const answers = Array.from({ length: 5 }, () => noting.diff(job()));
      expect(await until(async () => (await sent()).length === 2)).to.equal(true);
      // The worker answers none, so no third job may reach it however long it waits.
      await sleep(150);
      expect(await sent()).to.deep.equal(['0', '1']);
      noting.close();
      for (const a of await Promise.all(answers)) expect(plain(a)).to.deep.equal(plain(diffBody(job())));
      expect(noting.counts.diff).to.deep.equal({ worker: 0, main: 5 });
    });

    it('a body signed several times is copied once for the signatures on the worker together, and the copy dropped after the last', async () => {
      const marking = new BodyThread(1, undefined, pathToFileURL(path.join(dir, 'marks.mjs')));
      try {
        const body = Buffer.from('a body to sign'); // its first byte is 97
        // Two go at once, the third as the first is answered: all three saw one copy.
        expect(await Promise.all([1, 2, 3].map(() => marking.sign('sha256', 'k', body)))).to.deep.equal(['97', '98', '99']);
        expect(marking.sharedCount).to.equal(0);
        expect(body[0], "the main thread's body untouched").to.equal(97);
        // Signed again later (a retry): a fresh copy.
        expect(await marking.sign('sha256', 'k', body)).to.equal('97');
        expect(marking.sharedCount).to.equal(0);
      } finally {
        marking.close();
      }
    });

    it('one that answers a diff with a signature: the diff is done on the main thread, nothing thrown', async () => {
      const crossed = new BodyThread(1, undefined, pathToFileURL(path.join(dir, 'crossed.mjs')));
      try {
        expect(plain(await crossed.diff(job()))).to.deep.equal(plain(diffBody(job())));
        expect(crossed.counts.diff).to.deep.equal({ worker: 0, main: 1 });
      } finally {
        crossed.close();
      }
    });

    it('closed with jobs unanswered: they are done on the main thread', async () => {
      const silent = new BodyThread(1, undefined, pathToFileURL(path.join(dir, 'silent.mjs')));
      const pending = silent.diff(job());
      silent.close();
      expect(plain(await pending)).to.deep.equal(plain(diffBody(job())));
      // Closed, it starts no worker again.
      await silent.diff(job());
      expect(silent.counts.diff).to.deep.equal({ worker: 0, main: 2 });
    });
  });
});
