// Structured logs: one JSON line per request and one per delivery outcome, at the level
// LOG_LEVEL sets, as pino writes them.
import { expect } from 'chai';
import { createLogger } from '../lib/log.js';
import { Recorder } from './helpers/recorder.js';
import { startTestHub, type TestHub } from './helpers/hub.js';

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
