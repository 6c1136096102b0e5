// The baseline for intake: a bare express route that answers a form POST, in its own process
// like the hub. It parses the form and answers what the hub's ping answers, nothing else.
//   node --import tsx bench/express-child.ts
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
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

const server = http.createServer(app);
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
serveCommands(
  childCommands(),
  () => new Promise<void>((resolve) => server.close(() => resolve())));
process.send?.({ ready: { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` } });
