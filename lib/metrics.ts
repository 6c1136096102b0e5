// Prometheus metrics (prom-client), on a registry of the hub's own so several hubs in one
// process (the tests) do not share counters. Counters move with real traffic: every delivery
// attempt, every topic read, every request; gauges are read from the store when scraped.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Activity } from './activity.js';
import type { BodyWork } from './body-thread.js';
import { deadline } from './deadline.js';
import type { DeliveryEvent } from './notifier/notifier.js';
import { SharedRead } from './shared-read.js';
import type { Store, StoreCounts } from './store/store.js';

export interface MetricsSources {
  store: Store;
  queueDepth: () => number;
  lingering: () => number;
  outboxBytes: () => number;
  pausedHosts: () => number;
  sseClients: () => number;
  pollLagSeconds: () => number;
  /** Body work done, by kind and thread (see BodyThread). */
  bodyWork: () => Record<BodyWork, { worker: number; main: number }>;
}

/**
 * How long a scrape waits for the store's counts: half the scraper's timeout, which Prometheus
 * (and the agents built on its scraper) sends as X-Prometheus-Scrape-Timeout-Seconds, and half
 * Prometheus's default of 10 s when it is not sent. A database that went silent held every
 * scrape for DATABASE_QUERY_TIMEOUT_MS (30 s): Prometheus gave up at its scrape_timeout and
 * marked the hub down, and the counters and pushbutton_store_up 0 that would have said why
 * went missing with it.
 */
export function storeWaitMs(scrapeTimeoutHeader?: string): number {
  const given = scrapeTimeoutHeader === undefined ? NaN : Number(scrapeTimeoutHeader);
  // At most a minute: a read never outlasts DATABASE_QUERY_TIMEOUT_MS by much anyway, and a
  // stranger's header must not ask for a timer Node cannot set (past 2^31 ms it fires at once).
  const seconds = Number.isFinite(given) && given > 0 ? Math.min(given, 120) : 10;
  return Math.ceil((seconds * 1000) / 2);
}

export class Metrics {
  readonly registry = new Registry();
  private readonly deliveries: Counter<'protocol' | 'outcome'>;
  private readonly deliveryLatency: Histogram<'protocol'>;
  private readonly fetches: Counter<'outcome'>;
  private readonly requests: Counter<'route' | 'status'>;
  // The one counts() read every scrape shares (on PostgreSQL each read counts every subscription
  // by protocol), and with a read still running that a scrape gave up waiting for: a database
  // that answers slowly gets one such query at a time, however often it is scraped.
  private readonly storeCounts: SharedRead<StoreCounts>;
  // What the scrape under way read: undefined when the store could not be read, or not within
  // the scrape's wait. Set by exposition() just before it collects; the store gauges read it
  // synchronously as prom-client starts collecting, so concurrent scrapes each see their own.
  private scraped: StoreCounts | undefined;

  constructor(sources: MetricsSources) {
    const registers = [this.registry];
    this.storeCounts = new SharedRead(() => sources.store.counts(), 0);
    const metrics = this;
    // The process's and Node's own metrics under their usual names (process_cpu_seconds_total,
    // nodejs_eventloop_lag_seconds…), so the dashboards made for them find them; the prefix
    // they had doubled them into pushbutton_process_process_….
    collectDefaultMetrics({ register: this.registry });
    this.deliveries = new Counter({
      name: 'pushbutton_deliveries_total',
      help: 'Delivery attempts by protocol and outcome (delivered, failed).',
      labelNames: ['protocol', 'outcome'],
      registers,
    });
    this.deliveryLatency = new Histogram({
      name: 'pushbutton_delivery_latency_seconds',
      help: 'From the content version being detected to a delivery attempt finishing.',
      labelNames: ['protocol'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers,
    });
    this.fetches = new Counter({
      name: 'pushbutton_topic_fetches_total',
      help: 'Topic reads by outcome (changed, unchanged, failed).',
      labelNames: ['outcome'],
      registers,
    });
    this.requests = new Counter({
      name: 'pushbutton_http_requests_total',
      help: 'Requests by route and status code, counted when answered, or when a stream ends or the client hangs up (499: it left before any answer).',
      labelNames: ['route', 'status'],
      registers,
    });
    new Gauge({
      name: 'pushbutton_delivery_queue_depth',
      help: 'Deliveries running or waiting for a slot.',
      registers,
      collect() {
        this.set(sources.queueDepth());
      },
    });
    new Gauge({
      name: 'pushbutton_deliveries_lingering',
      help: 'Deliveries unanswered past DELIVERY_LINGER_AFTER_MS waiting on for their answer without a DELIVERY_CONCURRENCY slot (at most DELIVERY_LINGERING).',
      registers,
      collect() {
        this.set(sources.lingering());
      },
    });
    new Gauge({
      name: 'pushbutton_outbox_bytes',
      help: 'Bytes of content versions this process holds for delivery (OUTBOX_MAX_BYTES bounds it).',
      registers,
      collect() {
        this.set(sources.outboxBytes());
      },
    });
    new Gauge({
      name: 'pushbutton_paused_hosts',
      help: 'Subscriber hosts paused by the circuit breaker.',
      registers,
      collect() {
        this.set(sources.pausedHosts());
      },
    });
    new Gauge({
      name: 'pushbutton_sse_clients',
      help: 'Open Server-Sent Events streams.',
      registers,
      collect() {
        this.set(sources.sseClients());
      },
    });
    new Gauge({
      name: 'pushbutton_poll_lag_seconds',
      help: 'How late the most overdue topic poll waiting for a turn was at the poller\'s last tick (0 while POLL_CONCURRENCY keeps up).',
      registers,
      collect() {
        this.set(sources.pollLagSeconds());
      },
    });
    new Counter({
      name: 'pushbutton_body_work_total',
      help: 'Read bodies compared with what their topic held (work="diff": MD5, entry diff) and deliveries signed (work="sign"), by thread: on="worker" bodies of BODY_THREAD_MIN_BYTES or more, on="main" the rest (and any a failed worker handed back).',
      labelNames: ['work', 'on'],
      registers,
      collect() {
        const counts = sources.bodyWork();
        this.reset();
        for (const work of ['diff', 'sign'] as const) {
          this.inc({ work, on: 'worker' }, counts[work].worker);
          this.inc({ work, on: 'main' }, counts[work].main);
        }
      },
    });
    new Gauge({
      name: 'pushbutton_subscriptions',
      help: 'Subscriptions by protocol.',
      labelNames: ['protocol'],
      registers,
      collect() {
        // Left as last read while the store cannot be read (pushbutton_store_up says so).
        const read = metrics.scraped;
        if (!read) return;
        const { byProtocol } = read;
        this.reset();
        for (const p of ['http-post', 'https-post', 'xml-rpc', 'websub']) this.set({ protocol: p }, byProtocol[p] ?? 0);
      },
    });
    new Gauge({
      name: 'pushbutton_topics',
      help: 'Topics known to the hub.',
      registers,
      collect() {
        const read = metrics.scraped;
        if (read) this.set(read.topics);
      },
    });
    new Gauge({
      name: 'pushbutton_store_up',
      help: 'Whether this scrape could read the store (1) or not (0: its database down, or silent past half the scrape timeout; the store gauges keep their last values).',
      registers,
      collect() {
        this.set(metrics.scraped ? 1 : 0);
      },
    });
  }

  /**
   * The exposition text for one scrape. A store that cannot be read (its database down), or not
   * within storeWaitMs (silent), leaves the scrape answering with pushbutton_store_up 0: it
   * failed whole with a 500, or outlasted the scraper's timeout, and the counters that showed
   * the failures (deliveries, requests) and the process's own metrics went missing with it.
   */
  async exposition(scrapeTimeoutHeader?: string): Promise<string> {
    const scraped = await this.readCounts(storeWaitMs(scrapeTimeoutHeader));
    this.scraped = scraped;
    return this.registry.metrics();
  }

  private async readCounts(waitMs: number): Promise<StoreCounts | undefined> {
    const late = deadline(waitMs);
    try {
      const read = await Promise.race([this.storeCounts.get().catch(() => undefined), late.reached]);
      return read === 'late' ? undefined : read;
    } finally {
      late.clear();
    }
  }

  delivery(e: DeliveryEvent): void {
    this.deliveries.inc({ protocol: e.protocol, outcome: e.ok ? 'delivered' : 'failed' });
    this.deliveryLatency.observe({ protocol: e.protocol }, e.latencyMs / 1000);
  }

  activity(a: Activity): void {
    if (a.kind !== 'fetch') return;
    this.fetches.inc({ outcome: !a.ok ? 'failed' : a.detail?.startsWith('changed') ? 'changed' : 'unchanged' });
  }

  request(route: string, status: number): void {
    this.requests.inc({ route, status: String(status) });
  }
}
