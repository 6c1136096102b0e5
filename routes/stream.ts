// The browser face: GET /stream?topic=URL (repeatable) is a Server-Sent Events stream of the
// topics' changes, whichever protocol announced them; GET /events streams the operator's
// activity log for the dashboard. Last-Event-ID resumes; CORS is open; each client address
// may hold only so many streams, and the hub only so many in all.
import type { Request, Response, Router } from 'express';
import { ACTIVITY_CHANNEL, COMMENT, topicChannel, type StreamHub } from '../lib/stream.js';
import { badParameterMessage, messageFor, STREAM_WORDS, streamsFullMessage, streamsPerClientMessage, topicsPerStreamMessage } from '../lib/messages.js';
import { parseHttpUrl, queryParams } from './body.js';
import { answerPreflight, cors } from './cors.js';
import { sendText } from './reply.js';
import { rateKey } from '../lib/rate-limit.js';
import { clientAddress } from './rate.js';

export interface StreamFaceOptions {
  maxStreamsPerClient: number;
  /** SSE_MAX_STREAMS: open streams of every client together. */
  maxStreams: number;
  maxTopicsPerStream: number;
  /** Bytes a stream's connection is handed that its client has not read yet; past it events wait. */
  maxBufferedBytes: number;
  /** Events that may wait for a client (the backlog's size: past it the client could not resume anyway). */
  maxWaitingEvents: number;
  /** MAX_URL_LENGTH: a longer topic is refused on every other face, so no change of it could ever come. */
  maxUrlLength: number;
}

/**
 * When a stream refused because the hub holds SSE_MAX_STREAMS is told to ask again: as long as
 * public/client.js's follow() waits by default after a refusal (EventSource cannot read the
 * header; other clients can).
 */
const STREAMS_FULL_RETRY_AFTER_SECONDS = 30;

export function streamRoutes(router: Router, streams: StreamHub, opts: StreamFaceOptions): void {
  const perClient = new Map<string, number>();
  /** Streams open on every address together. */
  let total = 0;

  const open = (req: Request, res: Response, channels: Set<string>): void => {
    // Counted as the rate limits count: an IPv6 client holds a whole /64, one address per stream.
    const who = rateKey(clientAddress(req));
    const held = perClient.get(who) ?? 0;
    if (held >= opts.maxStreamsPerClient) {
      sendText(res, 429, streamsPerClientMessage(opts.maxStreamsPerClient));
      return;
    }
    // Counted per address alone, enough addresses (a botnet, or one IPv6 allocation's many /64s)
    // held streams without end, each a descriptor and ~27 KB: past the descriptor limit every
    // accept, read and delivery of the hub failed. 503: the hub, not this client, is at its limit.
    if (total >= opts.maxStreams) {
      res.setHeader('Retry-After', String(STREAMS_FULL_RETRY_AFTER_SECONDS));
      sendText(res, 503, streamsFullMessage(opts.maxStreams, STREAMS_FULL_RETRY_AFTER_SECONDS));
      return;
    }
    res.status(200);
    res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
    res.setHeader('Cache-Control', 'no-cache, no-transform');
    res.setHeader('X-Accel-Buffering', 'no');
    // Node sends no body for HEAD, so a stream left open for it would never end: it held a slot
    // and its connection (and whatever was pipelined behind it) until cut for stalling.
    if (req.method === 'HEAD') return void res.end();
    perClient.set(who, held + 1);
    total++;
    res.flushHeaders();
    const lastEventId = req.get('last-event-id') ?? (typeof req.query['lastEventId'] === 'string' ? req.query['lastEventId'] : undefined);
    // Backpressure. Written regardless, every event was held in memory for a client that reads
    // slowly or not at all, without end. The connection is handed at most maxBufferedBytes the
    // client has not read; later events wait, in order, as references to the backlog's own
    // texts, and go out as it reads (a replay of a whole backlog too). A client more than a
    // backlog behind could not be resumed anyway: its stream is cut, and its EventSource
    // reconnects with the last id it read and is told to reset.
    const waiting: Buffer[] = [];
    let ending = false;
    const full = (): boolean => res.writableLength > opts.maxBufferedBytes;
    const flush = (): void => {
      while (waiting.length > 0 && !full() && !res.destroyed) res.write(waiting.shift()!);
      if (ending && waiting.length === 0 && !res.writableEnded && !res.destroyed) res.end();
    };
    res.on('drain', flush);
    const detach = streams.attach(
      {
        channels,
        write: (chunk) => {
          if (res.destroyed || res.writableEnded) return false;
          // A heartbeat that cannot go now is dropped: it only says the connection is alive.
          if (chunk[0] === COMMENT && (waiting.length > 0 || full())) return true;
          waiting.push(chunk);
          flush();
          if (waiting.length > opts.maxWaitingEvents) {
            res.destroy();
            return false;
          }
          return true;
        },
        end: () => {
          ending = true;
          flush();
        },
      },
      lastEventId,
    );
    req.on('close', () => {
      detach();
      total--;
      const n = (perClient.get(who) ?? 1) - 1;
      if (n > 0) perClient.set(who, n);
      else perClient.delete(who);
    });
  };

  // A stream opened with fetch() (to send Last-Event-ID or a header of its own, as
  // fetch-event-source does on every reconnect) is preflighted: without the answer, the browser
  // never opened it.
  answerPreflight(router, ['/stream', '/events']);
  router.get('/stream', cors, (req, res) => {
    const topics = queryParams(req).getAll('topic');
    if (topics.length === 0) return void sendText(res, 400, STREAM_WORDS.topicRequired);
    if (topics.length > opts.maxTopicsPerStream) {
      return void sendText(res, 400, topicsPerStreamMessage(opts.maxTopicsPerStream));
    }
    const channels = new Set<string>();
    for (const t of topics) {
      const url = parseHttpUrl(t);
      if (typeof url !== 'string') return void sendText(res, 400, badParameterMessage('topic', url.problem));
      if (url.length > opts.maxUrlLength) {
        return void sendText(res, 400, messageFor({ code: 'url_too_long', limit: opts.maxUrlLength }, 'ping'));
      }
      channels.add(topicChannel(url));
    }
    open(req, res, channels);
  });

  router.get('/events', cors, (req, res) => open(req, res, new Set([ACTIVITY_CHANNEL])));
}
