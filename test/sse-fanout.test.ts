// A change fanned out to many open streams, over real HTTP. Each stream was handed the event's
// text as a string, which Node encodes into a copy of its own for every socket and holds until
// that client reads it: with a thousand clients that stopped reading, ~170 MB of copies of the
// same events (measured; SSE_MAX_STREAMS allows 5,000), and every fan-out encoded each event
// once per stream. And it was written to every stream in one turn of the event loop: ~170 ms
// with 5,000 streams, the whole hub waiting. What the hub hands the streams' sockets, and in
// which turn, is counted at the socket itself.
import net from 'node:net';
import { expect } from 'chai';
import { startTestHub, type TestHub } from './helpers/hub.js';
import { openStream, type SseStream } from './helpers/sse.js';
import { STREAMS_PER_TURN } from '../lib/stream.js';

/** Calls `fn` with each write to a socket of the hub's side of a connection, until the returned function is called. */
function watchHubWrites(port: number, fn: (socket: net.Socket, chunk: unknown) => void): () => void {
  const write = net.Socket.prototype.write;
  net.Socket.prototype.write = function (this: net.Socket, chunk: unknown, ...rest: unknown[]) {
    if (this.localPort === port) fn(this, chunk);
    return (write as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
  } as typeof write;
  return () => {
    net.Socket.prototype.write = write;
  };
}

describe('SSE fan-out to many streams', () => {
  let hub: TestHub;
  const streams: SseStream[] = [];
  before(async () => {
    hub = await startTestHub({ SSE_MAX_PER_CLIENT: '1000' });
  });
  after(async () => {
    for (const s of streams) s.close();
    await hub.destroy();
  });

  it('hands every stream the same bytes of an event: no stream has the event text encoded again for it', async () => {
    const topic = 'http://blog.example/fanout.xml';
    const STREAMS = 50;
    const EVENTS = 3;
    for (let i = 0; i < STREAMS; i++) streams.push(await openStream(`${hub.url}/stream?topic=${encodeURIComponent(topic)}`));
    await Promise.all(streams.map((s) => s.waitFor(1, (e) => e.event === 'ready')));

    // Strings handed to the sockets of the hub's side of the streams: Node encodes each one into
    // a buffer of its own for that socket.
    let stringBytes = 0;
    const stop = watchHubWrites(hub.port, (_socket, chunk) => {
      if (typeof chunk === 'string') stringBytes += Buffer.byteLength(chunk);
    });
    const body = 'x'.repeat(20_000);
    try {
      for (let v = 1; v <= EVENTS; v++) hub.hub.emit('change', { topic, version: v, body: Buffer.from(body), contentType: 'text/plain' });
      await Promise.all(streams.map((s) => s.waitFor(EVENTS, (e) => e.event === 'change')));
    } finally {
      stop();
    }
    for (const s of streams) expect(s.json<{ body: string }>('change').map((c) => c.body.length)).to.deep.equal([20_000, 20_000, 20_000]);
    // Only each chunk's size line (a few bytes) is a string of the stream's own.
    expect(stringBytes, 'bytes of event text encoded per stream').to.be.below(STREAMS * EVENTS * 16);
  });

  it('writes a change to many streams over several turns of the event loop, each stream getting every change in order', async () => {
    const topic = 'http://blog.example/many.xml';
    const STREAMS = 2 * STREAMS_PER_TURN + 100;
    const many: SseStream[] = [];
    for (let i = 0; i < STREAMS; i += 50) {
      many.push(...(await Promise.all(Array.from({ length: Math.min(50, STREAMS - i) }, () => openStream(`${hub.url}/stream?topic=${encodeURIComponent(topic)}`)))));
    }
    streams.push(...many);
    await Promise.all(many.map((s) => s.waitFor(1, (e) => e.event === 'ready')));

    // A turn ends where a setImmediate ticker runs: streams written to between two of its ticks.
    let written = new Set<net.Socket>();
    let most = 0;
    let ticking = true;
    const tick = (): void => {
      most = Math.max(most, written.size);
      written = new Set();
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    const stop = watchHubWrites(hub.port, (socket) => written.add(socket));
    try {
      for (let v = 1; v <= 3; v++) hub.hub.emit('change', { topic, version: v, body: Buffer.from(`change ${v}`), contentType: 'text/plain' });
      await Promise.all(many.map((s) => s.waitFor(3, (e) => e.event === 'change')));
    } finally {
      // The last turn's writes too: the streams may have read them before the ticker's next tick.
      most = Math.max(most, written.size);
      stop();
      ticking = false;
    }
    for (const s of many) expect(s.json<{ version: number }>('change').map((c) => c.version)).to.deep.equal([1, 2, 3]);
    expect(most, 'streams written to in one turn').to.be.at.most(STREAMS_PER_TURN);
  });
});
