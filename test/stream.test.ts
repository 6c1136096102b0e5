// StreamHub's memory of which channels lost events from the shared backlog, at its bound: the
// HTTP tests (operator.test.ts) cannot name 10,000 channels cheaply, so this one keeps two.
import { expect } from 'chai';
import { MAX_QUEUED_WRITES, STREAMS_PER_TURN, StreamHub, type StreamClient } from '../lib/stream.js';

function client(...channels: string[]): StreamClient & { text: string } {
  const c = { channels: new Set(channels), text: '', write: (chunk: Buffer) => ((c.text += chunk.toString()), true), end: () => undefined };
  return c;
}
const idOf = (text: string): string => [...text.matchAll(/^id: (.*)$/gm)].at(-1)![1]!;

describe('StreamHub resume across a shared backlog', () => {
  it('resumes a channel that lost nothing, resets one that did, and counts a forgotten channel as having lost everything up to what was forgotten', () => {
    const hub = new StreamHub(2, 2);
    const quiet = client('q');
    hub.attach(quiet, undefined);
    const since = idOf(quiet.text);

    // "a" and "b" each lose an event from the backlog; "q" loses nothing.
    for (const ch of ['a', 'b', 'a', 'b']) hub.publish(ch, 'change', {});
    const q = client('q');
    hub.attach(q, since);
    expect(q.text).not.to.include('event: reset');
    const a = client('a');
    hub.attach(a, since);
    expect(a.text).to.include('event: reset');

    // A third channel evicted: "a", updated least recently, is forgotten.
    for (let i = 0; i < 3; i++) hub.publish('c', 'change', {});
    const q2 = client('q');
    hub.attach(q2, since);
    expect(q2.text, 'a channel never evicted, but forgotten ones lost events after its id').to.include('event: reset');
    const later = client('q');
    hub.attach(later, idOf(a.text));
    expect(later.text, 'an id after everything forgotten resumes').not.to.include('event: reset');
  });
});

describe('StreamHub backlog', () => {
  it('replays exactly the newest SSE_BACKLOG events however many have gone through, and resets what fell out', () => {
    const size = 100;
    const hub = new StreamHub(size);
    const watcher = client('t');
    hub.attach(watcher, undefined);
    const ids: string[] = [];
    // Far past the backlog, so that the evicted events are cut off many times over.
    for (let i = 1; i <= 1_000; i++) {
      hub.publish('t', 'change', { n: i });
      ids.push(idOf(watcher.text));
      if (i % 97 !== 0) continue;
      // From each id still in the backlog, the events after it, in order; from the one before
      // the oldest kept, everything kept; from an older one, a reset.
      const resumed = client('t');
      hub.attach(resumed, ids[i - 2]!);
      expect([...resumed.text.matchAll(/"n":(\d+)/g)].map((m) => Number(m[1]))).to.deep.equal([i]);
      if (i <= size) continue;
      const oldest = client('t');
      hub.attach(oldest, ids[i - size - 1]!);
      expect([...oldest.text.matchAll(/"n":(\d+)/g)].map((m) => Number(m[1]))).to.deep.equal(Array.from({ length: size }, (_, k) => i - size + 1 + k));
      const lost = client('t');
      hub.attach(lost, ids[i - size - 2]!);
      expect(lost.text).to.include('event: reset');
    }
  });
});

describe('StreamHub fan-out over turns', () => {
  it('writes at most STREAMS_PER_TURN streams at once, and leaves at most MAX_QUEUED_WRITES writes waiting however fast events come', async () => {
    const hub = new StreamHub(1000);
    const clients = Array.from({ length: 2 * STREAMS_PER_TURN + 100 }, () => client('t'));
    let changes = 0;
    for (const c of clients) {
      hub.attach(c, undefined);
      const write = c.write;
      c.write = (chunk) => (changes++, write(chunk));
    }
    const got = (): number => changes;

    hub.publish('t', 'change', { n: 0 });
    expect(got(), 'written at once').to.equal(STREAMS_PER_TURN);
    // Far more writes than may wait, published in one turn.
    const events = Math.ceil((2 * MAX_QUEUED_WRITES) / clients.length);
    for (let i = 1; i < events; i++) hub.publish('t', 'change', { n: i });
    expect(events * clients.length - got(), 'writes left waiting').to.be.at.most(MAX_QUEUED_WRITES);

    while (got() < events * clients.length) await new Promise((r) => setImmediate(r));
    for (const c of clients) expect([...c.text.matchAll(/"n":(\d+)/g)].map((m) => Number(m[1]))).to.deep.equal(Array.from({ length: events }, (_, i) => i));
    hub.stop();
  });

  /** `n` streams on `channels`, attached to `hub`, each keeping what it was written. */
  const streamsOn = (hub: StreamHub, n: number, ...channels: string[]): ReturnType<typeof client>[] =>
    Array.from({ length: n }, () => {
      const c = client(...channels);
      hub.attach(c, undefined);
      return c;
    });
  const turn = (): Promise<void> => new Promise((r) => setImmediate(r));
  const events = (c: { text: string }): string[] => [...c.text.matchAll(/^event: (change|other)\ndata: (.*)$/gm)].map((m) => `${m[1]} ${m[2]}`);

  it('writes a later event to a stream only after the earlier ones still waiting for it, whatever channel it is on', async () => {
    const hub = new StreamHub(1000);
    const followers = streamsOn(hub, STREAMS_PER_TURN + 10, 't');
    // Attached last: among the writes of t's event left for the next turn.
    const both = streamsOn(hub, 1, 't', 'u')[0]!;
    hub.publish('t', 'change', { n: 1 });
    hub.publish('u', 'other', { n: 2 });
    // Written first, the later id would be the stream's Last-Event-ID: dropped before the
    // earlier event came, it would resume after it and never get it.
    while (!both.text.includes('event: other')) await turn();
    expect(events(both)).to.deep.equal(['change {"n":1}', 'other {"n":2}']);
    expect(followers.every((c) => events(c).length === 1)).to.equal(true);
    hub.stop();
  });

  it('writes at most STREAMS_PER_TURN streams in each later turn too', async () => {
    const hub = new StreamHub(1000);
    const clients = streamsOn(hub, 3 * STREAMS_PER_TURN, 't');
    let writes = 0;
    for (const c of clients) {
      const write = c.write;
      c.write = (chunk) => (writes++, write(chunk));
    }
    for (let n = 0; n < 3; n++) hub.publish('t', 'change', { n });
    const perTurn: number[] = [writes];
    while (writes < 3 * clients.length) {
      const before = writes;
      await turn();
      perTurn.push(writes - before);
    }
    expect(Math.max(...perTurn)).to.equal(STREAMS_PER_TURN);
    hub.stop();
  });

  it('at a stop, writes what is still waiting before the goodbye, and after it still writes a fan-out over turns', async () => {
    const hub = new StreamHub(1000);
    const clients = streamsOn(hub, STREAMS_PER_TURN + 10, 't');
    hub.publish('t', 'change', { n: 1 });
    hub.stop();
    for (const c of clients) expect(c.text.replace(/^(retry|id).*\n/gm, '')).to.match(/^event: ready\ndata: \{\}\n\nevent: change\ndata: \{"n":1\}\n\nevent: bye\n/);
    // A stream attached during the shutdown's grace (a kept-alive connection's request).
    const late = streamsOn(hub, STREAMS_PER_TURN + 10, 't');
    hub.publish('t', 'change', { n: 2 });
    for (let i = 0; i < 5; i++) await turn();
    expect(late.filter((c) => events(c).length === 0).length, 'streams never written').to.equal(0);
  });
});
