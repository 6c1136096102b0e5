// A change fanned out to many open streams, over real HTTP. Each stream was handed the event's
// text as a string, which Node encodes into a copy of its own for every socket and holds until
// that client reads it: with a thousand clients that stopped reading, ~170 MB of copies of the
// same events (measured; SSE_MAX_STREAMS allows 5,000), and every fan-out encoded each event
// once per stream. What the hub hands the streams' sockets is counted at the socket itself.
import net from 'node:net';
import { expect } from 'chai';
import { startTestHub, type TestHub } from './helpers/hub.js';
import { openStream, type SseStream } from './helpers/sse.js';

describe('SSE fan-out to many streams', () => {
  let hub: TestHub;
  const streams: SseStream[] = [];
  before(async () => {
    hub = await startTestHub({ SSE_MAX_PER_CLIENT: '100' });
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
    const write = net.Socket.prototype.write;
    net.Socket.prototype.write = function (this: net.Socket, chunk: unknown, ...rest: unknown[]) {
      if (this.localPort === hub.port && typeof chunk === 'string') stringBytes += Buffer.byteLength(chunk);
      return (write as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
    } as typeof write;
    const body = 'x'.repeat(20_000);
    try {
      for (let v = 1; v <= EVENTS; v++) hub.hub.emit('change', { topic, version: v, body: Buffer.from(body), contentType: 'text/plain' });
      await Promise.all(streams.map((s) => s.waitFor(EVENTS, (e) => e.event === 'change')));
    } finally {
      net.Socket.prototype.write = write;
    }
    for (const s of streams) expect(s.json<{ body: string }>('change').map((c) => c.body.length)).to.deep.equal([20_000, 20_000, 20_000]);
    // Only each chunk's size line (a few bytes) is a string of the stream's own.
    expect(stringBytes, 'bytes of event text encoded per stream').to.be.below(STREAMS * EVENTS * 16);
  });
});
