// `Expect: 100-continue` answered only when a body is about to be read. Node's default sends
// 100 Continue the moment the headers arrive, so the client sent its whole body even to a request
// the hub refuses unread (over a face's size limit, rate-limited, an unknown Content-Encoding):
// curl does this for every POST over 1 KB, and a fat ping or form of hundreds of MB was uploaded
// in full before its 413, or cut by SERVER_REQUEST_TIMEOUT_MS on a slow link without one. Told
// no, such a client sends nothing, and Node closes the connection after the final answer.
import type http from 'node:http';

const awaiting = new WeakSet<http.ServerResponse>();

/** From now on, `server` sends 100 Continue only through sendContinue. */
export function holdContinue(server: http.Server): void {
  server.on('checkContinue', (req: http.IncomingMessage, res: http.ServerResponse) => {
    awaiting.add(res);
    server.emit('request', req, res);
  });
}

/** Tells a client that waits for it to send its body; a no-op for every other request. */
export function sendContinue(res: http.ServerResponse): void {
  if (awaiting.delete(res) && !res.headersSent) res.writeContinue();
}
