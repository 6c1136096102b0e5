// The operator's face: the dashboard and demo pages (static files in public/), /stats.json,
// /feeds.opml, /subscription (a subscriber's own view), /healthz, /metrics (Prometheus), and
// the few actions that change state, which need `Authorization: Bearer <ADMIN_TOKEN>` and are
// off when no token is configured.
import type { ServerResponse } from 'node:http';
import path from 'node:path';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { HUB_FAILURE_ERROR, OPERATOR_WORDS, badParameterMessage, operatorBodyError } from '../lib/messages.js';
import type { Metrics } from '../lib/metrics.js';
import type { Operator } from '../lib/operator.js';
import { sameSecret } from '../lib/signature.js';
import { bodyErrorStatus, parseHttpUrl, queryParams, readsBody } from './body.js';
import { answerPreflight, cors } from './cors.js';
import { sendText } from './reply.js';
import { rateLimit } from './rate.js';
import type { RateLimiter } from '../lib/rate-limit.js';

export interface AdminFaceOptions {
  adminToken: string | undefined;
  publicDir: string;
  title: string;
  /** For /feeds.opml, the one public page whose size strangers can grow (a line per followed topic). */
  opmlRate: RateLimiter;
  /** For /subscription, which reads the store for anyone who asks. */
  statusRate: RateLimiter;
}

/**
 * How the app's error handler answers a failure of the hub itself (its store unreachable) on a
 * JSON route: in that route's own shape, which its clients parse, rather than the text/plain 500.
 */
function failureReply(body: Record<string, unknown>) {
  return (_req: Request, res: Response, next: NextFunction): void => {
    (res.locals as { failureReply?: (res: Response) => void }).failureReply = (r) => void r.status(500).json(body);
    next();
  };
}

/** Static files and the browser client are taken only as the type they are sent with. */
const NO_SNIFF: Readonly<Record<string, string>> = { 'X-Content-Type-Options': 'nosniff' };

/**
 * The pages load only their own scripts, styles and images and talk only to this hub, so a
 * policy of the hub's origin alone costs them nothing, and a script injected through anything a
 * page shows (topic URLs, feed titles, activity from strangers) would not run. No page may be
 * framed: the dashboard's forms send pings and subscriptions as whoever is looking at it.
 */
const PAGE_HEADERS: Readonly<Record<string, string>> = {
  ...NO_SNIFF,
  'Content-Security-Policy': "default-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'X-Frame-Options': 'DENY',
};

export function adminRoutes(router: Router, operator: Operator, metrics: Metrics, opts: AdminFaceOptions): void {
  const page = (file: string, headers: Readonly<Record<string, string>>) => (req: Request, res: Response) => {
    // Express matches /demo/ as /demo, but there the page's relative static/… URLs (and
    // client.js's idea of where the hub is) point one level down: the page came up unstyled,
    // its script a 404, and did nothing. Sent to the one spelling instead, by a relative
    // Location so that a proxy's path prefix is kept.
    if (req.path.length > 1 && req.path.endsWith('/')) {
      const query = req.originalUrl.indexOf('?');
      return void res.redirect(301, `../${path.posix.basename(req.path)}${query < 0 ? '' : req.originalUrl.slice(query)}`);
    }
    res.sendFile(path.join(opts.publicDir, file), { headers });
  };
  router.get('/', page('dashboard.html', PAGE_HEADERS));
  router.get('/demo', page('demo.html', PAGE_HEADERS));
  router.get('/docs', page('docs.html', PAGE_HEADERS));
  // Revalidated on every load (a 304 when unchanged), as the pages that name them are: cached for
  // an hour, an upgraded page ran with the previous version's scripts and styles meanwhile.
  // No directory redirect: /static is no page, and express.static's answer to it was an HTML 301
  // to an absolute /static/ (dropping a proxy's path prefix) that was then a 404 anyway.
  const staticHeaders = (res: ServerResponse): void => {
    for (const [name, value] of Object.entries(NO_SNIFF)) res.setHeader(name, value);
  };
  router.use('/static', express.static(opts.publicDir, { index: false, maxAge: 0, redirect: false, setHeaders: staticHeaders }));
  // The browser client is one ES module at a stable URL, so pages can import it directly.
  answerPreflight(router, ['/client.js', '/stats.json', '/feeds.opml', '/subscription']);
  router.get('/client.js', cors, page('client.js', NO_SNIFF));

  router.get('/healthz', (_req, res) => {
    res.json({ ok: true });
  });
  router.get('/stats.json', cors, failureReply({ error: HUB_FAILURE_ERROR }), async (_req, res) => {
    res.json(await operator.stats());
  });
  const refuse = (_req: Request, res: Response, msg: string): void => sendText(res, res.statusCode, msg);
  router.get('/feeds.opml', cors, rateLimit(opts.opmlRate, refuse), async (req, res) => {
    const parts = await operator.opml(opts.title);
    // The headers res.send gives a body (ETags are off app-wide), then the parts as they are.
    res.type('text/x-opml; charset=utf-8').set('Content-Length', String(parts.reduce((n, p) => n + p.length, 0)));
    if (req.method === 'HEAD') return void res.end();
    for (const part of parts) res.write(part);
    res.end();
  });
  // A subscriber's view of its own subscription: "verified, but nothing arrives" is the first
  // question subscribers ask of a hub. The secret, for a subscription that has one, comes as a
  // bearer token, never in the URL (which proxies log).
  router.get('/subscription', cors, failureReply({ error: HUB_FAILURE_ERROR }), rateLimit(opts.statusRate, (_req, res, msg) => void res.json({ error: msg })), async (req, res) => {
    const query = queryParams(req);
    const topic = parseHttpUrl(query.get('topic'));
    if (typeof topic !== 'string') return void res.status(400).json({ error: badParameterMessage('topic', topic.problem) });
    const callback = parseHttpUrl(query.get('callback'));
    if (typeof callback !== 'string') return void res.status(400).json({ error: badParameterMessage('callback', callback.problem) });
    const status = await operator.subscriptionStatus(topic, callback, bearerToken(req.get('authorization')));
    if (!status) return void res.status(404).json({ subscribed: false, topic, callback });
    res.json({ subscribed: true, ...status });
  });
  router.get('/metrics', async (req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.exposition(req.get('x-prometheus-scrape-timeout-seconds')));
  });
  // OPTIONS on a page or probe is told its methods. Express's router answered it by itself once
  // no layer had (200, Allow), which a face's own router did before handing on; on the app's
  // router the app's 404 is such a layer, so it said these paths do not exist.
  // The bare address takes POSTs too (XML-RPC calls and WebSub requests, see root.ts), which a
  // page on another origin sends as text/xml or with a header of its own: asked about first, it
  // must hear the faces' open policy, or the browser never sends the call.
  answerPreflight(router, ['/'], 'GET, HEAD, POST');
  router.options(['/demo', '/docs', '/healthz', '/metrics'], (_req, res) => {
    res.setHeader('Allow', 'GET, HEAD');
    sendText(res, 200, 'GET, HEAD');
  });

  const admin = express.Router();
  admin.use((req: Request, res: Response, next: NextFunction) => {
    if (!opts.adminToken) return void sendText(res, 403, OPERATOR_WORDS.actionsOff);
    if (!tokenMatches(req.get('authorization'), opts.adminToken)) {
      res.setHeader('WWW-Authenticate', 'Bearer');
      return void sendText(res, 401, OPERATOR_WORDS.tokenRequired);
    }
    next();
  });
  admin.use(readsBody(16 * 1024, express.json({ limit: '16kb' })));
  admin.use(failureReply({ ok: false, error: HUB_FAILURE_ERROR }));
  admin.post('/subscriptions/delete', async (req, res) => {
    const topic = parseHttpUrl(stringField(req.body, 'topic'));
    const callback = parseHttpUrl(stringField(req.body, 'callback'));
    if (typeof topic !== 'string' || typeof callback !== 'string') {
      return void res.status(400).json({ ok: false, error: OPERATOR_WORDS.topicAndCallbackNotUrls });
    }
    res.json({ ok: true, deleted: await operator.dropSubscription(topic, callback) });
  });
  admin.post('/hosts/retry', (req, res) => {
    const host = stringField(req.body, 'host');
    if (host === undefined || host === '') return void res.status(400).json({ ok: false, error: OPERATOR_WORDS.hostRequired });
    const woken = operator.retryHost(host);
    if (woken === undefined) return void res.status(400).json({ ok: false, error: OPERATOR_WORDS.hostNotAlone });
    res.json({ ok: true, woken });
  });
  // A body the JSON parser refused is the operator's mistake: 400 (or 413), never the app's 500.
  admin.use((err: unknown, _req: Request, res: Response, next: NextFunction) => {
    const status = bodyErrorStatus(err, res);
    if (status === undefined) return next(err);
    res.status(status).json({ ok: false, error: operatorBodyError(status) });
  });
  router.use('/admin', admin);
}

/** A string field of a JSON body (express.json gives an object, an array or nothing), else undefined. */
function stringField(body: unknown, name: string): string | undefined {
  const v: unknown = typeof body === 'object' && body !== null ? (body as Record<string, unknown>)[name] : undefined;
  return typeof v === 'string' ? v : undefined;
}

function bearerToken(header: string | undefined): string | undefined {
  return (header && /^Bearer\s+(.+)$/i.exec(header.trim())?.[1]) || undefined;
}

function tokenMatches(header: string | undefined, token: string): boolean {
  const given = bearerToken(header);
  return given !== undefined && sameSecret(given, token);
}
