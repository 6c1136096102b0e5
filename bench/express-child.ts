// The baselines for intake, in their own process like the hub:
//   POST /ping   a bare express route: parses the form and answers what the hub's ping answers;
//   POST /fetch  the same, after a GET of the form's `url` with undici, body read in full: the
//                least any ping that must read its feed before answering can cost.
//   node --import tsx bench/express-child.ts
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { request } from 'undici';
import { childCommands, serveCommands } from './common.js';

const REPLY = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<result success="true" msg="Thanks for the ping."/>\n';

const app = express();
app.disable('x-powered-by');
app.set('etag', false);
app.post('/ping', express.urlencoded({ extended: false }), (req, res) => {
  const url = (req.body as Record<string, unknown> | undefined)?.url;
  if (typeof url !== 'string' || url === '') {
    res.status(400).type('text/plain').send('url is required\n');
    return;
  }
  res.type('text/xml; charset=utf-8').send(REPLY);
});

app.post('/fetch', express.urlencoded({ extended: false }), async (req, res) => {
  const url = (req.body as Record<string, unknown> | undefined)?.url;
  if (typeof url !== 'string' || url === '') {
    res.status(400).type('text/plain').send('url is required\n');
    return;
  }
  try {
    const feed = await request(url);
    await feed.body.arrayBuffer();
    res.type('text/xml; charset=utf-8').send(REPLY);
  } catch {
    res.status(502).type('text/plain').send('feed unreadable\n');
  }
});

const server = http.createServer(app);
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
serveCommands(
  childCommands(),
  () => new Promise<void>((resolve) => server.close(() => resolve())));
process.send?.({ ready: { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` } });
