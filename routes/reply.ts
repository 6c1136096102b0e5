// How the faces answer with text the hub composed itself: rssCloud's XML and JSON replies,
// XML-RPC responses, and words for a person.
import type { ServerResponse } from 'node:http';

/**
 * Answers `status` with `body` as `type`, which names its charset. Written to Node's response
 * directly: express's res.type().send() parsed and rebuilt a Content-Type the hub already knows
 * exactly (mime-types, then content-type), ~2 KB and a few µs of every ping. As express does, a
 * HEAD request gets the headers without the body.
 */
export function sendString(res: ServerResponse, status: number, type: string, body: string): void {
  res.statusCode = status;
  res.setHeader('Content-Type', type);
  res.setHeader('Content-Length', Buffer.byteLength(body));
  if (res.req.method === 'HEAD') res.end();
  else res.end(body);
}

/**
 * A reply in words for a person, as WebSub refusals (REC §5.1.2), the stream and operator faces
 * and the app's own 404 and 500 give it. Ended by a newline, so that what curl or a script
 * prints stands on its own line.
 */
export function sendText(res: ServerResponse, status: number, words: string): void {
  sendString(res, status, 'text/plain; charset=utf-8', words.endsWith('\n') ? words : `${words}\n`);
}
