// Structured logs: one JSON line per request and one per delivery outcome, at the level
// LOG_LEVEL sets, as pino writes them.
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, openSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { createLogger } from '../lib/log.js';
import { callbackHost, hostsOnly } from '../lib/model.js';
import { Recorder, freePort, loopbackAddress, sleep } from './helpers/recorder.js';
import { TEST_ENV, startTestHub, tempDataDir, type TestHub } from './helpers/hub.js';
import { HUB_ARGS } from './helpers/child-hub.js';

describe('logs', () => {
  let feed: Recorder;
  let sub: Recorder;
  before(async () => {
    let n = 0;
    feed = await Recorder.start((_r, res) => void res.writeHead(200, { 'content-type': 'text/plain' }).end(`version ${++n}`));
    sub = await Recorder.start();
  });
  after(async () => {
    await feed.close();
    await sub.close();
  });

  const run = async (level: 'info' | 'warn'): Promise<Record<string, unknown>[]> => {
    const lines: string[] = [];
    let hub: TestHub | undefined;
    try {
      hub = await startTestHub({}, undefined, { log: createLogger(level, (l) => lines.push(l)) });
      const topic = `${feed.url}/logs-${level}.txt`;
      await hub.postForm('/pleaseNotify', { port: String(sub.port), path: `/cb-${level}`, protocol: 'http-post', url1: topic });
      await hub.postForm('/ping', { url: topic });
      await hub.hub.idle();
    } finally {
      await hub?.destroy();
    }
    return lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  };

  it('writes one JSON line per request and per delivery outcome at info', async () => {
    const entries = await run('info');
    const requests = entries.filter((e) => e.msg === 'request');
    expect(requests.map((e) => [e.method, e.path, e.status])).to.deep.equal([
      ['POST', '/pleaseNotify', 200],
      ['POST', '/ping', 200],
    ]);
    const deliveries = entries.filter((e) => e.msg === 'delivery');
    expect(deliveries).to.have.length(1);
    expect(deliveries[0]).to.include({ level: 'info', protocol: 'http-post', ok: true, status: 200, version: 2 });
    expect(deliveries[0]!.host).to.equal(`127.0.0.1:${sub.port}`);
    for (const e of entries) expect(e.time, 'every line has an ISO time').to.match(/^\d{4}-\d\d-\d\dT/);
  });

  it('writes neither at LOG_LEVEL=warn', async () => {
    const entries = await run('warn');
    expect(entries.filter((e) => e.msg === 'request' || e.msg === 'delivery')).to.deep.equal([]);
  });
});

describe('URLs in what a log line quotes (an error, a Location) are cut down to their hosts', () => {
  it('each URL, whatever surrounds it, as the rule has it: a scheme from a letter at the edge of a word to its "://", then up to a space, quote or angle bracket', () => {
    const cases: [string, string][] = [
      ['redirect from http://cb.example/s?t=1 to https://other.example:8443/x', 'redirect from cb.example to other.example:8443'],
      ['x1http://cb.example/a?token=t', 'cb.example'],
      ['a+b://cb.example/a?token=t', 'cb.example'],
      ['+b://cb.example/a?token=t', '+cb.example'],
      ['HTTP://CB.Example./A', 'cb.example'],
      [`"http://cb.example/a?t=1" 'http://cb.example/b' <http://cb.example/c>`, `"cb.example" 'cb.example' <cb.example>`],
      ['1a://b.example/x://c.example/y', '1a://b.example/c.example'],
      ['\u00e9http://cb.example/', '\u00e9cb.example'],
      ['http://user:pw@cb.example/', 'cb.example'],
      ['ht!tp://cb.example/x', 'ht!cb.example'],
      ['a.a.a.a:x://cb.example/', 'a.a.a.a:cb.example'],
      // No scheme starts inside a word.
      ['_http://cb.example/a', '_http://cb.example/a'],
      ['1http://cb.example/a', '1http://cb.example/a'],
      ['unchanged, version 3', 'unchanged, version 3'],
    ];
    for (const [text, logged] of cases) expect(hostsOnly(text), text).to.equal(logged);
    // The rule as one expression (whose cost is the square of a long run of scheme characters, so
    // not the one used), against strings of what makes it hard.
    const rule = (text: string): string => text.replace(/\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>]*/gi, (url) => callbackHost(url));
    const pieces = ['a', 'Z', '1', '_', '+', '.', '-', ':', '/', '://', ' ', '"', '<', '@', '\u00e9', 'http', 'x1http', '?t=1'];
    let seed = 1;
    const next = (n: number): number => ((seed = (seed * 48271) % 2147483647), seed % n);
    for (let i = 0; i < 20_000; i++) {
      const text = Array.from({ length: 1 + next(12) }, () => pieces[next(pieces.length)]).join('');
      expect(hostsOnly(text), text).to.equal(rule(text));
    }
  });
});

describe('logs of a hub that cannot start', function () {
  this.timeout(30_000);
  /** The hub's process run to its exit: its code and every line it wrote on stderr. */
  const start = async (env: Record<string, string>): Promise<{ code: number | null; lines: string[] }> => {
    const proc = spawn(process.execPath, [...HUB_ARGS], {
      cwd: fileURLToPath(new URL('..', import.meta.url)),
      env: { ...process.env, ...TEST_ENV, LOG_LEVEL: 'info', ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    proc.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const [code] = (await once(proc, 'exit')) as [number | null];
    return { code, lines: stderr.split('\n').filter((l) => l !== '') };
  };
  // What `journalctl -o cat | jq -c .` and a log shipper read: each line one JSON object.
  const entries = (lines: string[]): Record<string, unknown>[] =>
    lines.map((l) => {
      const entry: unknown = JSON.parse(l);
      expect(entry, l).to.be.an('object');
      return entry as Record<string, unknown>;
    });

  it('says why in one JSON line at level error, a bad LOG_LEVEL itself included', async () => {
    const { code, lines } = await start({ LOG_LEVEL: 'bogus' });
    expect(code).to.equal(1);
    const [entry, ...more] = entries(lines);
    expect(more).to.deep.equal([]);
    expect(entry).to.include({ level: 'error', msg: 'configuration error' });
    expect(entry!.error).to.match(/^LOG_LEVEL: must be one of /);
  });

  it('says why in a JSON line when it cannot listen, whatever LOG_LEVEL silences', async () => {
    const host = loopbackAddress();
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, host, resolve));
    const dir = await tempDataDir();
    try {
      const { port } = taken.address() as AddressInfo;
      const { code, lines } = await start({ HOST: host, PORT: String(port), DATA_DIR: dir, LOG_LEVEL: 'silent' });
      expect(code).to.equal(1);
      const failed = entries(lines).filter((e) => e.msg === 'failed to start');
      expect(failed).to.have.length(1);
      expect(failed[0]).to.include({ level: 'error' });
      expect(failed[0]!.error).to.include('EADDRINUSE');
    } finally {
      taken.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('logs that cannot be written', function () {
  this.timeout(30_000);
  it('are dropped: a hub whose stderr is a full disk (/dev/full) still starts and answers', async () => {
    // A free port, found first: the hub's "listening" line, which would say it, cannot be read.
    const host = loopbackAddress();
    const port = await freePort(host);
    const dir = await tempDataDir();
    const full = openSync('/dev/full', 'w');
    const proc = spawn(process.execPath, [...HUB_ARGS], {
      cwd: fileURLToPath(new URL('..', import.meta.url)),
      env: { ...process.env, ...TEST_ENV, HOST: host, PORT: String(port), LOG_LEVEL: 'info', DATA_DIR: dir },
      stdio: ['ignore', 'ignore', full],
    });
    closeSync(full);
    try {
      let status: number | undefined;
      for (let i = 0; i < 120 && status === undefined && proc.exitCode === null; i++) {
        await sleep(100);
        status = await fetch(`http://${host}:${port}/healthz`).then((r) => r.status, () => undefined);
      }
      expect(status, 'GET /healthz').to.equal(200);
      // Every request is logged: a few more lines that cannot be written.
      for (let i = 0; i < 3; i++) expect((await fetch(`http://${host}:${port}/nowhere`)).status).to.equal(404);
      await sleep(200);
      expect(proc.exitCode, 'the process is still running').to.equal(null);
    } finally {
      if (proc.exitCode === null) {
        proc.kill('SIGTERM');
        await once(proc, 'exit');
      }
      await rm(dir, { recursive: true, force: true });
    }
  });
});
