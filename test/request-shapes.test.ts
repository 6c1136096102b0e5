// The hub's requests and responses are made with express's prototypes (RequestShapes), so that
// express's Object.setPrototypeOf on each changes nothing: the largest cost a ping had.
import { expect } from 'chai';
import http from 'node:http';
import net from 'node:net';
import express from 'express';
import { RequestShapes, bornFrom } from '../lib/app.js';
import { startTestHub, type TestHub } from './helpers/hub.js';

interface Seen {
  request: object | null;
  response: object | null;
}

/** The prototypes of the next request `server` gets, as Node made it and after every other listener (the app's among them) has run. */
function watch(server: http.Server): { born: Promise<Seen>; handled: Promise<Seen> } {
  const seen = (req: http.IncomingMessage, res: http.ServerResponse): Seen => ({ request: Object.getPrototypeOf(req) as object | null, response: Object.getPrototypeOf(res) as object | null });
  const born = new Promise<Seen>((resolve) => server.prependOnceListener('request', (req, res) => resolve(seen(req, res))));
  const handled = new Promise<Seen>((resolve) => server.once('request', (req, res) => resolve(seen(req, res))));
  return { born, handled };
}

describe('requests made with the app’s prototypes', () => {
  let hub: TestHub | undefined;
  let server: http.Server | undefined;
  afterEach(async () => {
    await hub?.destroy();
    hub = undefined;
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    server = undefined;
  });

  it('a request reaches the hub already made with the prototypes express gives it', async () => {
    hub = await startTestHub();
    const { born, handled } = watch(hub.server);
    // Through the app (a plain ping is answered before it: routes/plain-ping.ts).
    const res = await fetch(`${hub.url}/ping`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' }, body: 'url=' });
    expect(res.status).to.equal(200);
    const [b, h] = await Promise.all([born, handled]);
    expect(b.request).to.not.equal(http.IncomingMessage.prototype);
    expect(b.response).to.not.equal(http.ServerResponse.prototype);
    // What express set in app.handle is what the request was made with.
    expect(b.request).to.equal(h.request);
    expect(b.response).to.equal(h.response);
    expect(b.request).to.have.property('accepts').that.is.a('function');
  });

  it('before adopt, Node’s own prototypes; after it, the app’s, and express answers as ever', async () => {
    const shapes = new RequestShapes();
    const app = express();
    app.get('/', (req, res) => void res.type('text/plain').send(req.accepts(['json', 'text']) || 'none'));
    server = http.createServer({ ...shapes.serverOptions }, app);
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/`;

    const before = watch(server);
    expect(await (await fetch(url, { headers: { accept: 'text/*' } })).text()).to.equal('text');
    expect((await before.born).request).to.equal(http.IncomingMessage.prototype);
    expect((await before.handled).request).to.equal(app.request);

    shapes.adopt(app);
    const after = watch(server);
    expect(await (await fetch(url, { headers: { accept: 'application/json' } })).text()).to.equal('json');
    expect((await after.born).request).to.equal(app.request);
    expect((await after.born).response).to.equal(app.response);
    const made = new Promise<http.IncomingMessage>((resolve) => server!.prependOnceListener('request', resolve));
    const [req] = await Promise.all([made, fetch(url).then((r) => r.text())]);
    expect(req).to.be.an.instanceOf(http.IncomingMessage);
  });

  it('a class is left to be made as it is (it cannot be called on an object that `new` made); a function makes its objects with the prototype set', () => {
    class Made {
      made = true;
    }
    expect(bornFrom(Made)).to.equal(undefined);
    const Born = bornFrom(http.IncomingMessage)!;
    const proto = Object.create(http.IncomingMessage.prototype) as object;
    Born.prototype = proto;
    const socket = new net.Socket();
    const made = new (Born as unknown as typeof http.IncomingMessage)(socket);
    expect(Object.getPrototypeOf(made)).to.equal(proto);
    // Made by Node's own constructor: its fields are there.
    expect(made.socket).to.equal(socket);
    expect(made.headers).to.deep.equal({});
    socket.destroy();
  });
});
