import { expect } from 'chai';
import { Recorder } from './helpers/recorder.js';
import { startTestHub, type TestHub } from './helpers/hub.js';

describe('rssCloud smoke', () => {
  let hub: TestHub;
  let feed: Recorder;
  let sub: Recorder;
  before(async () => {
    hub = await startTestHub();
    feed = await Recorder.start((_r, res) => {
      res.writeHead(200, { 'content-type': 'application/rss+xml' }).end(`<rss><channel><title>${Date.now()}</title></channel></rss>`);
    });
    sub = await Recorder.start();
  });
  after(async () => {
    await hub.destroy();
    await feed.close();
    await sub.close();
  });

  it('subscribes without domain and notifies on ping', async () => {
    const res = await hub.postForm('/pleaseNotify', { port: String(sub.port), path: '/notify', protocol: 'http-post', url1: `${feed.url}/feed.xml` });
    const text = await res.text();
    expect(res.status).to.equal(200);
    expect(text).to.contain('success="true"');
    expect(sub.requests).to.have.length(1);
    const ping = await hub.postForm('/ping', { url: `${feed.url}/feed.xml` });
    expect(await ping.text()).to.contain('Thanks for the ping.');
    expect(sub.requests).to.have.length(2);
    expect(sub.requests[1]!.body.toString()).to.equal(new URLSearchParams({ url: `${feed.url}/feed.xml` }).toString());
  });
});
