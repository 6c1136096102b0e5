// HTTP as real clients and intermediaries speak it at the hub's faces: conditional and range
// requests on the pages (download managers, caches resuming), forms in a charset other than
// UTF-8, and a method a face does not take.
import { expect } from 'chai';
import { startTestHub, type TestHub } from './helpers/hub.js';
import { FeedServer, rawRequest } from './helpers/rsscloud.js';

describe('HTTP edges at the faces', function () {
  let hub: TestHub;
  let feeds: FeedServer;
  before(async () => {
    hub = await startTestHub();
    feeds = await FeedServer.start();
  });
  after(async () => {
    await hub.destroy();
    await feeds.close();
  });

  describe('pages and static files', () => {
    it('a Range past the end of a file is 416 with the file\'s length, not the hub failing (500)', async () => {
      for (const path of ['/static/style.css', '/', '/client.js']) {
        const whole = await rawRequest(`${hub.url}${path}`, { method: 'GET' });
        const res = await rawRequest(`${hub.url}${path}`, { method: 'GET', headers: { range: 'bytes=99999999-' } });
        expect([path, res.status, res.headers['content-range']]).to.deep.equal([path, 416, `bytes */${whole.headers['content-length']}`]);
      }
    });

    it('an If-Match that fails is 412, and a satisfiable Range still 206 (control)', async () => {
      const failed = await rawRequest(`${hub.url}/static/style.css`, { method: 'GET', headers: { 'if-match': '"not-this-one"' } });
      expect(failed.status).to.equal(412);
      const part = await rawRequest(`${hub.url}/static/style.css`, { method: 'GET', headers: { range: 'bytes=0-9' } });
      expect([part.status, part.body.length]).to.deep.equal([206, 10]);
    });
  });
});
