// Builds a running hub from a Config: store, outbound client, notifier, core, app, listener,
// cleanup timers. main.ts runs it for `npm start`; tests start it in-process with port 0.
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { createApp, RequestShapes } from './app.js';
import { holdContinue } from './continue.js';
import { deadline } from './deadline.js';
import type { Config } from './config.js';
import { HttpClient, type Resolver } from './http.js';
import { ActivityLog, type Activity, type ActivityInput } from './activity.js';
import { LocalEventBus, PgEventBus, type EventBus } from './event-bus.js';
import { BodyThread } from './body-thread.js';
import { Poller } from './feeds/poller.js';
import { Metrics } from './metrics.js';
import type { DeliveryEvent } from './notifier/notifier.js';
import type { Content } from './notifier/sender.js';
import { Operator } from './operator.js';
import { hostsOnly } from './model.js';
import { ACTIVITY_CHANNEL, StreamHub, topicChannel } from './stream.js';
import { Hub } from './hub.js';
import { silentLogger, type Logger } from './log.js';
import { Notifier } from './notifier/notifier.js';
import { createStore } from './store/create-store.js';
import type { Store } from './store/store.js';
import { Verifier } from './verify.js';
import { LazyChange, fitEvent } from './change-event.js';
import { describeError } from './notifier/outcome.js';

const USER_AGENT = 'Pushbutton/0.1 (rssCloud and WebSub hub)';
const CLEANUP_INTERVAL_MS = 24 * 3600_000;
const SHUTDOWN_GRACE_MS = 5000;

export interface RunningHub {
  url: string;
  port: number;
  config: Config;
  hub: Hub;
  store: Store;
  server: http.Server;
  close(): Promise<void>;
}

export interface StartOptions {
  log?: Logger;
  /** Replaces the system DNS resolver for outbound requests (tests). */
  resolver?: Resolver;
  /** Replaces the trusted certificates for outbound https (tests: their own CA). */
  ca?: string[];
  /** Reads waiting at once in one feed host's line (tests: a short line); default WAITING_PER_HOST. */
  fetchWaitingPerHost?: number;
  /** The first wait after a delivery's unexpected failure, doubling at each (tests: waits shorter than 1 s … 16 s). */
  unexpectedRetryBaseMs?: number;
}

/**
 * Every response open on a connection, for two jobs at the connection's edge, kept by one
 * 'request' listener and one 'close' listener per response, not one of each per job.
 *
 * A response whose client stopped reading it (a large /feeds.opml, a static page) kept its
 * connection and the unsent part of its body in memory for good: Node's timeouts cover only
 * what the client sends. A connection on which nothing moves for `stalledMs` while its response
 * is under way is cut. One that is quiet before its response starts is the app at work (a ping
 * waiting for its deliveries' first attempts) and is left alone; an idle kept-alive connection
 * is Node's (keepAliveTimeout). A stream's heartbeats keep a reading stream moving; one that
 * stops reading gets nothing more written (routes/stream.ts holds its events) and is cut by this,
 * or sooner once it is a backlog behind.
 *
 * From shutdown on, every response says `Connection: close`, and its connection is closed once
 * it is sent. server.close() stops only the listener: Node went on answering keep-alive, so a
 * client holding a kept-alive connection (a load balancer's upstream pool, a publisher's HTTP
 * client) kept sending new requests to the stopping process for the whole grace period, and
 * the cut at its end reset whatever was in flight then (a 502 at the load balancer, a ping its
 * publisher counts as failed though the hub took it). Told to close, such a client opens its
 * next connection to a process that is not stopping. Returns what close() calls to begin this.
 */
function trackResponses(server: http.Server, stalledMs: number): () => void {
  // Pipelined requests queue their responses behind the first, so a connection may hold several.
  const responding = new WeakMap<Socket, Set<http.ServerResponse>>();
  const open = new Set<http.ServerResponse>();
  let closing = false;
  const last = (res: http.ServerResponse): void => {
    // One whose headers are out (a stream) is ended by close() itself, its connection closed as idle.
    if (!res.headersSent) res.setHeader('Connection', 'close');
  };
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const socket = req.socket;
    let onSocket = responding.get(socket);
    if (!onSocket) responding.set(socket, (onSocket = new Set()));
    onSocket.add(res);
    if (closing) last(res);
    else open.add(res);
    res.once('close', () => {
      onSocket.delete(res);
      open.delete(res);
    });
  });
  // With a 'timeout' listener Node leaves the socket to it (an idle kept-alive one included).
  server.setTimeout(stalledMs, (socket: Socket) => {
    const onSocket = responding.get(socket);
    if (!onSocket || onSocket.size === 0 || [...onSocket].some((res) => res.headersSent)) socket.destroy();
  });
  return () => {
    closing = true;
    for (const res of open) last(res);
    open.clear();
  };
}

export async function startHub(given: Config, opts: StartOptions = {}): Promise<RunningHub> {
  const log = opts.log ?? silentLogger;
  // Listen first: with PORT=0 the hub's own URL (the rel="hub" of every delivery) is known
  // only once the port is, and the app is attached before anything is handed out.
  // Requests and responses made with the app's prototypes from its start on (RequestShapes).
  const shapes = new RequestShapes();
  // Slow clients may not hold a connection open forever. Node enforces both timeouts only when
  // it sweeps its connections (every 30 s by default), so sweep often enough to honour them.
  const server = http.createServer({
    ...shapes.serverOptions,
    connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(Math.min(given.serverHeadersTimeoutMs, given.serverRequestTimeoutMs) / 4))),
  });
  server.headersTimeout = given.serverHeadersTimeoutMs;
  server.requestTimeout = given.serverRequestTimeoutMs;
  // Node's 5 s default is shorter than the idle timeout of the load balancers in front of a hub
  // (60 s on the usual ones): one that reuses a connection the hub has just closed answers its
  // client 502.
  server.keepAliveTimeout = given.serverKeepAliveTimeoutMs;
  // Never below two heartbeats: a quiet stream that reads must not be cut.
  const lastResponses = trackResponses(server, Math.max(given.serverResponseTimeoutMs, 2 * given.sseHeartbeatMs));
  holdContinue(server);
  // A request that comes before the app is attached (while the store opens: a second or more at
  // a restart with many subscriptions) waits for it: Node answers nothing that no 'request'
  // listener does, so such a request hung until its client gave up. Listening only once ready is
  // no cure: a hub started twice by mistake would open (and rewrite) the store under the running
  // one before learning that the port is taken.
  const early: [http.IncomingMessage, http.ServerResponse][] = [];
  const hold = (req: http.IncomingMessage, res: http.ServerResponse): void => void early.push([req, res]);
  server.on('request', hold);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(given.port, given.host, () => resolve());
  });
  // A start that fails after this point (the store in use or unreadable, the database
  // unreachable) closes the listener and what it opened: nothing is left answering, or holding
  // requests, or holding the data directory, for a caller that goes on running.
  const opened: (() => unknown)[] = [];
  try {
    const port = (server.address() as AddressInfo).port;
    const host = given.host === '0.0.0.0' || given.host === '::' ? 'localhost' : given.host.includes(':') ? `[${given.host}]` : given.host;
    const config: Config = given.publicUrlSet ? given : { ...given, publicUrl: `http://${host}:${port}` };

    const store = createStore(config, log);
    await store.open();
    opened.push(() => store.close());
    const httpClient = new HttpClient({
      timeoutMs: config.requestTimeoutMs,
      lookupSlots: config.lookupSlots,
      fetchConcurrency: config.fetchConcurrency,
      fetchPerHost: config.fetchPerHost,
      ...(opts.fetchWaitingPerHost !== undefined && { fetchWaitingPerHost: opts.fetchWaitingPerHost }),
      maxResponseBytes: config.maxResponseBytes,
      userAgent: USER_AGENT,
      fetchAllowCidrs: config.fetchAllowCidrs,
      callbackAllowCidrs: config.callbackAllowCidrs,
      ...(opts.resolver && { resolver: opts.resolver }),
      ...(opts.ca && { ca: opts.ca }),
    });
    opened.push(() => httpClient.close());
    const bodies = new BodyThread(config.bodyThreadMinBytes, log);
    opened.push(() => bodies.close());
    const notifier = new Notifier({ config, http: httpClient, store, log, bodies, ...(opts.unexpectedRetryBaseMs !== undefined && { unexpectedRetryBaseMs: opts.unexpectedRetryBaseMs }) });
    opened.push(() => notifier.close());
    const verifier = new Verifier(httpClient, log, config.websubVerifyConcurrency, config.websubTimeoutMs);
    const hub = new Hub({ config, store, http: httpClient, notifier, verifier, log, bodies });
    const poller = new Poller({ config, store, log, refresh: (url, withinMs) => hub.pollRead(url, withinMs) });
    // Events go through the bus: in-process on the embedded store; on PostgreSQL also to and
    // from the other hub processes on the database (LISTEN/NOTIFY), so a stream or dashboard on
    // any process sees every process's events, and every poller learns of every subscription.
    const bus: EventBus =
      config.databaseUrl === undefined ? new LocalEventBus() : new PgEventBus({ connectionString: config.databaseUrl, queryTimeoutMs: config.databaseQueryTimeoutMs, log, fit: fitEvent });
    opened.push(() => bus.close());
    await bus.start();
    hub.on('subscribed', (url: string) => bus.publish('subscribed', url));
    hub.on('published', (url: string) => bus.publish('published', url));
    bus.on('subscribed', (url) => poller.track(url as string));
    bus.on('published', (url) => poller.publisherActive(url as string));

    const streams = new StreamHub(config.sseBacklog);
    const activity = new ActivityLog();
    const metrics = new Metrics({
      store,
      queueDepth: () => notifier.queueDepth,
      lingering: () => notifier.lingeringDeliveries,
      outboxBytes: () => notifier.outboxBytes,
      pausedHosts: () => notifier.pausedHosts().length,
      sseClients: () => streams.size,
      pollLagSeconds: () => poller.lagSeconds,
      bodyWork: () => bodies.counts,
    });
    hub.on('change', (content: Content) => bus.publish('change', new LazyChange(content)));
    bus.on('change', (e) => streams.publish(topicChannel((e as { topic: string }).topic), 'change', e));
    // Details reach read-only pages: any URL in them is cut to its host (see hostsOnly).
    hub.on('activity', (a: ActivityInput) => {
      const detail = a.detail === undefined ? undefined : hostsOnly(a.detail);
      // Most details hold no URL: the entry goes as it is, not copied.
      bus.publish('activity', detail === a.detail ? a : { ...a, detail });
    });
    // Another process's activity shows in the log and on streams, but its metrics are its own.
    let recordingRemote = false;
    bus.on('activity', (a, remote) => {
      recordingRemote = remote;
      try {
        activity.record(a as ActivityInput);
      } finally {
        recordingRemote = false;
      }
    });
    notifier.on('delivery', (e: DeliveryEvent) => {
      metrics.delivery(e);
      bus.publish('activity', {
        kind: 'delivery',
        topic: e.topic,
        ok: e.ok,
        protocol: e.protocol,
        // Only an error's text can hold a URL; the host and a status are shown as they are.
        detail: e.error === undefined ? (e.status === undefined ? e.host : `${e.host} ${e.status}`) : hostsOnly(`${e.host} ${e.status ?? e.error}`),
      });
    });
    activity.on('activity', (a: Activity) => {
      if (!recordingRemote) metrics.activity(a);
      streams.publish(ACTIVITY_CHANNEL, 'activity', a);
    });
    const operator = new Operator({ store, notifier, activity, poller, streams, signatureAlgorithm: config.websubSignatureAlgorithm });
    const app = createApp({ config, hub, store, log, metrics, operator, streams });

    server.off('request', hold);
    shapes.adopt(app.express);
    server.on('request', app.listener);
    // One whose client has gone is dropped: nobody is left to answer, and a stream handed over
    // after its 'close' would be counted open for good.
    for (const [req, res] of early.splice(0)) if (!req.socket.destroyed) app.listener(req, res);
    // Heartbeats from the first stream on: the rest of the start (a long outbox to resume) must
    // not leave streams quiet long enough for SERVER_RESPONSE_TIMEOUT_MS or a proxy to cut them.
    streams.start(config.sseHeartbeatMs);
    opened.push(() => streams.stop());

    const cleanup = async (): Promise<void> => {
      try {
        const report = await hub.removeExpired();
        log.info('cleanup', { ...report });
      } catch (e) {
        log.error('cleanup failed', { error: describeError(e) });
      }
    };
    await cleanup();
    await hub.resume();
    // Takes over the outbox claims of processes that died (resume() began renewing this one's).
    notifier.startClaims();
    hub.startClaims();
    opened.push(() => hub.close());
    opened.push(() => poller.stop());
    await poller.start();
    const timer = setInterval(() => void cleanup(), CLEANUP_INTERVAL_MS);
    timer.unref();
    // Pending reads whose process is gone are read by whoever is running, not only at a start:
    // a record is found between PENDING_READ_ADOPT_AFTER_MS and 1.5 times it after it was made.
    const adopt = (): void =>
      void hub.adoptOrphanedReads().catch((e: unknown) => log.warn('pending reads not listed; trying again at the next check', { error: describeError(e) }));
    const adopter = setInterval(adopt, Math.ceil(config.pendingReadAdoptAfterMs / 2));
    adopter.unref();

    let closing: Promise<void> | undefined;
    const close = (): Promise<void> =>
      (closing ??= (async () => {
        clearInterval(timer);
        clearInterval(adopter);
        lastResponses();
        // WebSub's requests, given WEBSUB_TIMEOUT_MS, hold the stop no longer than REQUEST_TIMEOUT_MS ones.
        httpClient.hurry();
        poller.stop();
        // Within the same grace as requests: a poll may wait DATABASE_LOCK_WAIT_MS for another
        // process's lock on its topic. One still running past it is left to the next start.
        const pollsGrace = deadline(SHUTDOWN_GRACE_MS);
        const pollsEnded = Promise.race([poller.settled(), pollsGrace.reached]);
        streams.stop();
        // Stop accepting, let requests in flight (a ping waiting for its deliveries) finish for
        // a grace period, then cut what is left.
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        const grace = setTimeout(() => server.closeAllConnections(), SHUTDOWN_GRACE_MS);
        await closed;
        clearTimeout(grace);
        await pollsEnded;
        pollsGrace.clear();
        notifier.close();
        hub.close();
        await hub.idle();
        await notifier.drained();
        bodies.close();
        // Given up only now, with every outcome of this process durable: a restart or another
        // process resumes what is left at once instead of waiting out the lease, and repeats
        // nothing this process finished.
        await store.releaseClaims(notifier.owner).catch((e: unknown) => log.warn('releasing claims failed', { error: describeError(e) }));
        await httpClient.close();
        await bus.close();
        await store.close();
      })());

    return { url: `http://${host}:${port}`, port, config, hub, store, server, close };
  } catch (e) {
    server.close();
    server.closeAllConnections();
    for (const undo of opened.reverse()) await Promise.resolve().then(undo).catch(() => undefined);
    throw e;
  }
}
