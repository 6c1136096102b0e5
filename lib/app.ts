// createApp mounts the faces on one express app, with a plain ping's own way in before it
// (routes/plain-ping.ts). It is the only file in lib/ that knows express exists, because
// mounting faces is its whole job.
import http from 'node:http';
import { BlockList, isIP } from 'node:net';
import express, { type NextFunction, type Request, type Response } from 'express';
import { fileURLToPath } from 'node:url';
import { adminRoutes } from '../routes/admin.js';
import { plainPing } from '../routes/plain-ping.js';
import { rootPostRouting } from '../routes/root.js';
import { rpc2Routes } from '../routes/rpc2.js';
import { streamRoutes } from '../routes/stream.js';
import { rssCloudRoutes } from '../routes/rsscloud.js';
import { testApiRoutes } from '../routes/test-api.js';
import { webSubRoutes } from '../routes/websub.js';
import type { Config } from './config.js';
import type { Hub } from './hub.js';
import type { Logger } from './log.js';
import type { Metrics } from './metrics.js';
import type { Operator } from './operator.js';
import type { StreamHub } from './stream.js';
import type { Store } from './store/store.js';
import { RateLimiter } from './rate-limit.js';
import { AddressGuard } from './address-guard.js';
import { NOT_FOUND_WORDS, UNHANDLED_FAILURE_WORDS, statusTextMessage } from './messages.js';
import { withoutTrailingSlashes } from './model.js';
import { clientAddress, forwardedAddress } from '../routes/rate.js';
import { sendText } from '../routes/reply.js';

/**
 * public/ at the project root: from lib/ in the sources, and from <build>/lib/ when compiled
 * (dist/, and the test run's own build, test/run.mjs), each a directory of the root.
 */
const PUBLIC_DIR = fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? '../public/' : '../../public/', import.meta.url));

export interface AppDeps {
  config: Config;
  hub: Hub;
  store: Store;
  log: Logger;
  metrics: Metrics;
  operator: Operator;
  streams: StreamHub;
}

/** Route labels for request metrics: a fixed set, so strangers' paths cannot grow the label space. */
const ROUTES = ['/pleaseNotify', '/ping', '/rsscloud/pleaseNotify', '/rsscloud/ping', '/RPC2', '/websub', '/stream', '/events', '/stats.json', '/feeds.opml', '/subscription', '/metrics', '/healthz', '/test', '/admin'];
const ROUTES_LOWER = ROUTES.map((r) => [r, r.toLowerCase()] as const);

function routeLabel(path: string): string {
  const p = withoutTrailingSlashes(path.toLowerCase()) || '/';
  return ROUTES_LOWER.find(([, r]) => p === r || p.startsWith(`${r}/`))?.[0] ?? (p === '/' ? '/' : 'other');
}

/** express "trust proxy": believe X-Forwarded-For only from the proxies TRUST_PROXY names. */
function trustedProxies(cidrs: string[]): (addr: string) => boolean {
  const list = new BlockList();
  for (const c of cidrs) {
    const [addr = '', bits] = c.split('/');
    const family = isIP(addr) === 6 ? 'ipv6' : 'ipv4';
    list.addSubnet(addr, bits === undefined ? (family === 'ipv6' ? 128 : 32) : Number(bits), family);
  }
  return (addr) => {
    // A socket that is already gone has no address (undefined at run time): trust nothing.
    if (typeof addr !== 'string') return false;
    // A proxy further along the chain may be written with its port, as its client is.
    const plain = forwardedAddress(addr);
    const a = plain.startsWith('::ffff:') && plain.includes('.') ? plain.slice(7) : plain;
    const family = isIP(a);
    return family !== 0 && list.check(a, family === 6 ? 'ipv6' : 'ipv4');
  };
}

/**
 * A reverse proxy in front of the hub that TRUST_PROXY does not name makes every client its own
 * address: rssCloud subscriptions without `domain` are tested at the proxy and fail, and all
 * clients share one address's rate limits and SSE_MAX_PER_CLIENT (the 17th browser is refused).
 * Nothing said why. X-Forwarded-For from a non-public address not named is most likely such a
 * proxy (one from a public address, a client's own header, is not): said once, naming it.
 * Returns the check each request gets.
 */
function unnamedProxyWarning(trusted: (addr: string) => boolean, log: Logger): (req: Request) => void {
  const publicAddress = new AddressGuard([]);
  let warned = false;
  return (req) => {
    if (warned || req.headers['x-forwarded-for'] === undefined) return;
    const peer = req.socket.remoteAddress;
    if (peer !== undefined && !trusted(peer) && !publicAddress.isAllowed(peer)) {
      warned = true;
      log.warn('X-Forwarded-For from a proxy TRUST_PROXY does not name: every client behind it counts as the proxy (rssCloud callbacks, rate limits, streams per client)', {
        proxy: forwardedAddress(peer),
      });
    }
  };
}

/**
 * What every request gets on arrival, through the app or answered without it: one log line (the
 * path without its query, as queries carry challenges and topic URLs with tokens; never a body)
 * and the request metric, when its response closes.
 */
function arrival(metrics: Metrics, log: Logger): (req: http.IncomingMessage, res: http.ServerResponse, path: string, ip: string) => void {
  return (req, res, path, ip) => {
    const started = process.hrtime.bigint();
    // Every response closes, in the tick after it finishes or when its client hangs up (a
    // stream, or an answer not yet sent, never finishes): one listener sees them all.
    res.once('close', () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      // 499 (nginx's "client closed request"): the client left before any answer was sent.
      const status = res.headersSent ? res.statusCode : 499;
      metrics.request(routeLabel(path), status);
      log.info('request', { method: req.method, path, status, ms: Math.round(ms * 10) / 10, ip });
    });
  };
}

/**
 * Constructors for the hub's HTTP server (http.createServer's IncomingMessage and ServerResponse
 * options) that make each request and response with the app's own prototypes once `adopt(app)`
 * has run. Express gives them those prototypes in app.handle, by Object.setPrototypeOf on every
 * request: an object Node made with its own changes shape there, after Node's HTTP code has used
 * it, and that code then meets two shapes of every request and response. Made with the app's
 * prototypes, the call changes nothing. It was the largest cost on a ping's path: the hub's main
 * thread spent ~348 µs per ping of an unchanged feed and ~226 µs with these (bench/compare.ts
 * against the commit before, 2026-12-05), much of the difference in garbage collection and in
 * Node's response code.
 * A request that comes before the app is attached is made with Node's prototypes, as before.
 */
export class RequestShapes {
  private readonly request = bornFrom(http.IncomingMessage);
  private readonly response = bornFrom(http.ServerResponse);
  /** To spread into http.createServer's options (none: Node's own constructors, unshaped). */
  readonly serverOptions = this.request && this.response ? { IncomingMessage: this.request as unknown as typeof http.IncomingMessage, ServerResponse: this.response as unknown as typeof http.ServerResponse } : {};

  adopt(app: express.Express): void {
    if (this.request) this.request.prototype = app.request;
    if (this.response) this.response.prototype = app.response;
  }
}

/**
 * A constructor that makes what `base` makes, on the object `new` made with its own prototype,
 * which can be set (a class's cannot); undefined if `base` is a class. Not Reflect.construct with
 * this as new.target, which works on a class too: measured, pings were then no faster than with
 * Node's own constructors.
 */
export function bornFrom(base: { prototype: object } & (new (...args: never[]) => object)): { prototype: object } | undefined {
  // Node's are functions (of Node 20 to 24); called without `new`, a class would throw at every request.
  if (Function.prototype.toString.call(base).startsWith('class')) return undefined;
  // Node makes each with at most two arguments: the socket; the request and its options.
  const make = base as unknown as (this: object, a: unknown, b: unknown) => void;
  function Born(this: object, a: unknown, b: unknown): void {
    make.call(this, a, b);
  }
  Born.prototype = base.prototype;
  return Born;
}

/** The app, and the listener the HTTP server gives every request: a plain ping's own, else the app. */
export interface HubApp {
  express: express.Express;
  listener: (req: http.IncomingMessage, res: http.ServerResponse) => void;
}

export function createApp(deps: AppDeps): HubApp {
  const { config, hub, store, log, metrics } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  const trusted = trustedProxies(config.trustProxy);
  app.set('trust proxy', trusted);
  const checkProxy = unnamedProxyWarning(trusted, log);
  // One bucket set per endpoint, so a flood of pings does not lock a reader out of subscribing.
  const rate = (): RateLimiter => new RateLimiter(config.rateLimitPerMinute, config.rateLimitBurst);
  const routeRootPost = rootPostRouting({ rpc2MaxBodyBytes: config.rpc2MaxBodyBytes, websubMaxBodyBytes: config.websubMaxBodyBytes, rate: rate() });

  // What every request gets on arrival, in one middleware (each layer costs express's router
  // an allocation and a call for every request): the proxy check, the request log and metrics,
  // and a POST to `/` sent on to its face (its body read first when only the body tells which).
  const arrived = arrival(metrics, log);
  app.use((req: Request, res: Response, next: NextFunction) => {
    checkProxy(req);
    // Read now: by 'close' the client may have hung up and its socket lost its address, and a
    // router mounted at a path (/admin, a face's body reader) may have cut req.path down to the
    // part after it: read then, /admin/hosts/retry was logged as /hosts/retry and counted under
    // route "other", a body refused on /pleaseNotify as "/".
    arrived(req, res, req.path, clientAddress(req));
    routeRootPost(req, res, next);
  });

  // The faces add their routes to the app's own router, in this order: a router of their own
  // for each was one more router every request went through (a ping one, an SSE stream four),
  // each pass an allocation of ~1.5 KB and its calls.
  const router = app.router;
  const pingRate = rate();
  rssCloudRoutes(router, hub, {
    maxBodyBytes: config.restMaxBodyBytes,
    pleaseNotifyRate: rate(),
    pingRate,
    log,
  });
  rpc2Routes(router, hub, {
    maxBodyBytes: config.rpc2MaxBodyBytes,
    limits: { maxDepth: config.xmlrpcMaxDepth, maxElements: config.xmlrpcMaxElements, maxBytes: config.rpc2MaxBodyBytes },
    rate: rate(),
    log,
  });
  webSubRoutes(router, hub, { maxBodyBytes: config.websubMaxBodyBytes, rate: rate() });
  streamRoutes(router, deps.streams, {
    maxStreamsPerClient: config.sseMaxPerClient,
    maxStreams: config.sseMaxStreams,
    maxTopicsPerStream: config.sseMaxTopicsPerStream,
    maxBufferedBytes: config.sseMaxBufferedBytes,
    maxWaitingEvents: config.sseBacklog,
    maxUrlLength: config.maxUrlLength,
  });
  adminRoutes(router, deps.operator, metrics, { adminToken: config.adminToken, publicDir: PUBLIC_DIR, title: 'Pushbutton feeds', opmlRate: rate(), statusRate: rate() });
  if (config.enableTestApi) testApiRoutes(router, hub, store, deps.operator, config.rssCloudLeaseSeconds);

  app.use((_req: Request, res: Response) => {
    sendText(res, 404, NOT_FOUND_WORDS);
  });
  // Never a stack trace on the wire: the detail goes to the log.
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    // The client's own mistake, as the static file server reports it (a Range past the end of
    // the file: 416 with its Content-Range; an If-Match that fails: 412): that status, not a 500
    // that a download manager or cache resuming a page took for the hub failing, and logged as one.
    const status = clientErrorStatus(err);
    if (status !== undefined && !res.headersSent) return void sendText(res, status, statusTextMessage(status));
    log.error('request failed', { path: req.path, error: err instanceof Error ? err.message : String(err) });
    if (res.headersSent) return res.destroy();
    // A face whose clients read another shape (JSON) says how to answer (see failureReply).
    const reply = (res.locals as { failureReply?: (res: Response) => void }).failureReply;
    if (reply) return reply(res);
    sendText(res, 500, UNHANDLED_FAILURE_WORDS);
  });
  const ping = plainPing(hub, { maxBodyBytes: config.restMaxBodyBytes, rate: pingRate, log, arrived });
  return {
    express: app,
    listener: (req, res) => {
      if (!ping(req, res)) app(req, res);
    },
  };
}

/** The 4xx of an error that says it may be shown to the client (http-errors' `expose`), else undefined. */
function clientErrorStatus(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const { status, expose } = err as { status?: unknown; expose?: unknown };
  return expose === true && typeof status === 'number' && status >= 400 && status < 500 ? status : undefined;
}
