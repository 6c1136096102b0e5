// Name servers that never answer, met by the system resolver itself: the hub runs as a child
// process in a mount namespace of its own (unshare, as root: CI runs as root) whose
// /etc/resolv.conf names a UDP socket of this test that never answers (2 s per lookup), and
// whose /etc/hosts names the good hosts, all on 127.0.0.1. Nothing is stubbed inside the hub:
// lookups are getaddrinfo on libuv's thread pool, as in production.
import { expect } from 'chai';
import dgram from 'node:dgram';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { spawnHub, type ChildHub } from './helpers/child-hub.js';
import { Recorder, loopbackAddress, sleep } from './helpers/recorder.js';
import { FeedServer, MSG, ping } from './helpers/rsscloud.js';

/**
 * A name server that reads every query, records the name asked, and never answers, but for
 * names under servfail.test, which it answers at once with SERVFAIL (as a recursive resolver
 * does when a zone's own name servers fail).
 */
class SilentNameServer {
  readonly asked: string[] = [];
  private constructor(private readonly socket: dgram.Socket) {
    socket.on('message', (msg, from) => {
      const name = questionName(msg);
      this.asked.push(name);
      if (name.endsWith('.servfail.test')) socket.send(servfail(msg), from.port, from.address);
    });
  }

  static async start(address: string): Promise<SilentNameServer> {
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', (e) => reject(new Error(`a name server for the tests needs ${address}:53 (root, and nothing bound to port 53 on every address): ${e.message}`)));
      socket.bind(53, address, () => resolve());
    });
    return new SilentNameServer(socket);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}

/** The first question's name in a DNS query: labels after the 12-byte header. */
function questionName(msg: Buffer): string {
  const labels: string[] = [];
  for (let at = 12; at < msg.length && msg[at]! > 0; at += msg[at]! + 1) labels.push(msg.subarray(at + 1, at + 1 + msg[at]!).toString('latin1'));
  return labels.join('.');
}

/** The query turned into its SERVFAIL answer: the header and question only. */
function servfail(query: Buffer): Buffer {
  let end = 12;
  while (end < query.length && query[end]! > 0) end += query[end]! + 1;
  const reply = Buffer.from(query.subarray(0, end + 5));
  reply[2] = 0x80 | (query[2]! & 0x01); // a response; recursion desired as asked
  reply[3] = 0x80 | 0x02; // recursion available; SERVFAIL
  reply.writeUInt16BE(1, 4);
  reply.fill(0, 6, 12); // no answer, authority or additional records
  return reply;
}

/**
 * Runs the rest of its command line with resolv.conf, hosts and nsswitch.conf replaced, in
 * mount and host-name namespaces of its own: a host name without a domain, and none of the
 * resolver's environment variables, so no search domain or option of the machine's adds
 * queries or time to a lookup.
 */
function sandbox(dir: string): string[] {
  const script = [
    'echo pushbutton-test > /proc/sys/kernel/hostname',
    'mount --bind "$1/resolv.conf" /etc/resolv.conf',
    'mount --bind "$1/hosts" /etc/hosts',
    'mount --bind "$1/nsswitch.conf" /etc/nsswitch.conf',
    'shift',
    'unset RES_OPTIONS LOCALDOMAIN HOSTALIASES',
    'exec "$@"',
  ].join(' && ');
  return ['unshare', '--mount', '--uts', '--propagation', 'private', 'sh', '-c', script, 'sh', dir];
}

const named = (url: string, host: string): string => {
  const u = new URL(url);
  u.hostname = host;
  return u.href;
};

describe('name servers that never answer (the system resolver, REQUEST_TIMEOUT_MS=1000)', function () {
  this.timeout(30_000);
  let dir: string;
  let nameServer: SilentNameServer;
  let feeds: FeedServer;
  let hub: ChildHub;
  const GOOD = Array.from({ length: 8 }, (_, i) => `good${i}.test`);

  before(async function () {
    try {
      execFileSync('unshare', ['--mount', 'true'], { stdio: 'pipe' });
    } catch (e) {
      throw new Error(`these tests need a mount namespace of their own (unshare --mount, as root): ${(e as Error).message}`);
    }
    dir = await mkdtemp(path.join(os.tmpdir(), 'pushbutton-dns-'));
    const address = loopbackAddress();
    nameServer = await SilentNameServer.start(address);
    await writeFile(path.join(dir, 'resolv.conf'), `nameserver ${address}\noptions timeout:2 attempts:1\n`);
    await writeFile(path.join(dir, 'hosts'), ['127.0.0.1 localhost', ...GOOD.map((h) => `127.0.0.1 ${h}`), ''].join('\n'));
    await writeFile(path.join(dir, 'nsswitch.conf'), 'hosts: files dns\n');
    feeds = await FeedServer.start();
    hub = await spawnHub(path.join(dir, 'data'), { REQUEST_TIMEOUT_MS: '1000', POLL_ENABLED: 'false' }, 15_000, sandbox(dir));
  });
  after(async () => {
    await hub?.stop('SIGTERM');
    await feeds?.rec.close();
    await nameServer?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('a named feed is read as soon as the lookups of a burst of slow names are over, not after every one of them has run', async () => {
    // Names whose lookups must first be shown to go to the silent name server.
    const slow = Array.from({ length: 20 }, (_, i) => `http://n${i}.slow.test/feed.xml`);
    const t0 = Date.now();
    const replies = await Promise.all(slow.map((url) => ping(hub, url)));
    replies.forEach((r, i) => expect(r.msg).to.equal(MSG.pingReadError(slow[i]!)));
    expect(nameServer.asked.some((n) => n.endsWith('.slow.test')), 'no lookup reached the name server').to.equal(true);
    // The two lookups running when the burst came (libuv runs two at once) end 2 s after it:
    // then every named host can be looked up again. Before, the 18 others still ran one after
    // the other, two at a time, for ~18 s: every ping of a named feed failed meanwhile. Asked
    // 5 s after (2.5 s was once too early on a loaded machine), long before those 18 s.
    await sleep(Math.max(0, t0 + 5000 - Date.now()));
    for (const host of GOOD.slice(0, 4)) {
      const feed = named(feeds.fixed(`burst-${host}`), host);
      expect((await ping(hub, feed)).msg, host).to.equal(MSG.pinged);
      expect(feeds.reads(feed), host).to.equal(1);
    }
  });

  it('pings of one slow name at the same time make one lookup, not one each', async () => {
    const url = 'http://once.slow.test/feed.xml';
    const replies = await Promise.all(Array.from({ length: 12 }, () => ping(hub, url)));
    for (const r of replies) expect(r.msg).to.equal(MSG.pingReadError(url));
    // Enough for a second pair of lookups of the name to have gone out, had there been any: the
    // first pair ends 2 s after the burst (resolv.conf timeout:2), 1 s after the replies came;
    // a lookup started then would have asked at once.
    await sleep(2500);
    const queries = nameServer.asked.filter((n) => n === 'once.slow.test').length;
    // One getaddrinfo asks for A and AAAA: two queries.
    expect(queries).to.be.within(1, 2);
    const feed = named(feeds.fixed('after-once'), GOOD[4]!);
    expect((await ping(hub, feed)).msg).to.equal(MSG.pinged);
  });

  it('while slow names hold every lookup thread, a host reached lately is reached at once, on its last answer', async () => {
    const host = GOOD[5]!;
    expect((await ping(hub, named(feeds.fixed('known-before'), host))).msg).to.equal(MSG.pinged);
    // Another port of the same host: a new connection, so a lookup of the name.
    const other = await FeedServer.start();
    try {
      const slow = Array.from({ length: 4 }, (_, i) => `http://held${i}.slow.test/feed.xml`);
      const burst = Promise.all(slow.map((url) => ping(hub, url)));
      await sleep(200);
      const feed = named(other.fixed('during'), host);
      // Its lookup would have waited for a thread until the slow ones gave up (2 s), past the 1 s deadline.
      expect((await ping(hub, feed)).msg).to.equal(MSG.pinged);
      expect(other.reads(feed)).to.equal(1);
      for (const r of await burst) expect(r.msg).to.match(/error reading the resource/);
    } finally {
      await other.rec.close();
    }
  });

  for (const [label, topic] of [
    ['does not answer in time', 'http://topic.slow.test/feed.xml'],
    ['fails (SERVFAIL)', 'http://topic.servfail.test/feed.xml'],
  ] as const) {
    it(`a WebSub subscription to a topic whose name server ${label} is verified, not denied`, async () => {
      // The subscriber answers every verification with its challenge.
      const subscriber = await Recorder.start((req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain' }).end(req.query.get('hub.challenge') ?? '');
      });
      try {
        const res = await fetch(`${hub.url}/websub`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ 'hub.mode': 'subscribe', 'hub.topic': topic, 'hub.callback': `${subscriber.url}/cb` }).toString(),
        });
        expect(res.status).to.equal(202);
        const [verification] = await subscriber.waitFor(1);
        // Before, a lookup that failed for now was taken for a topic the hub may never read: hub.mode=denied.
        expect(verification!.query.get('hub.mode')).to.equal('subscribe');
        expect(verification!.query.get('hub.topic')).to.equal(topic);
        await sleep(300);
        expect(subscriber.requests.filter((r) => r.query.get('hub.mode') === 'denied')).to.deep.equal([]);
      } finally {
        await subscriber.close();
      }
    });
  }

});
