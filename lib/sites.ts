// Sites: a ping that names a web page rather than a feed (a blog's home page, as weblogUpdates
// pings do, or an rssCloud ping whose url turns out to be HTML nobody follows as a topic)
// stands for the feeds the page links to. This module reads what a page says about its feeds
// (<link rel="alternate"> to RSS, Atom and JSON Feed, plus rel="hub" and rel="self", through
// parseDiscovery) and remembers it in the store, so that a site pinging on every post does not
// have its page read every time: the mapping is read again once it is older than
// SITE_RECHECK_SECONDS. The hub decides when a URL is a site (lib/hub.ts); this module only
// knows pages.
import type { Config } from './config.js';
import { FETCH_MAX_REDIRECTS, FetchFailed, type FetchedPage } from './feeds/checker.js';
import { parseDiscovery, type Discovery } from './feeds/discover.js';
import type { HttpClient } from './http.js';
import type { Site } from './model.js';
import type { Store } from './store/store.js';

/**
 * The most feeds one site may stand for: every ping of the site reads each of them, so a page
 * listing many URLs (perhaps on someone else's server) cannot turn one ping into many fetches.
 */
const MAX_FEEDS_PER_SITE = 5;


/**
 * The feeds a page links to, in document order, at most MAX_FEEDS_PER_SITE. RSS, Atom and
 * `application/feed+json` alternates count; a plain `application/json` alternate counts only
 * when its title or path says "feed" (JSON Feed 1.0 used that type, but so do API links such
 * as WordPress's wp-json ones, which are not feeds). URLs longer than the hub accepts, and the
 * page itself, are left out.
 */
function feedsOf(discovery: Discovery, pageUrl: string, maxUrlLength: number): string[] {
  const feeds: string[] = [];
  for (const alt of discovery.alternates) {
    if (feeds.length >= MAX_FEEDS_PER_SITE) break;
    if (alt.href.length > maxUrlLength || alt.href === pageUrl || feeds.includes(alt.href)) continue;
    if (alt.type === 'application/json' && !/feed/i.test(`${alt.title} ${new URL(alt.href).pathname}`)) continue;
    feeds.push(alt.href);
  }
  return feeds;
}

export interface SitesDeps {
  config: Config;
  store: Store;
  http: HttpClient;
  now: () => number;
}

export class Sites {
  constructor(private readonly deps: SitesDeps) {}

  get(url: string): Promise<Site | undefined> {
    return this.deps.store.getSite(url);
  }

  /** Whether a remembered site may be used without reading its page again. */
  isFresh(site: Site): boolean {
    return this.deps.now() - site.whenChecked < this.deps.config.siteRecheckSeconds * 1000;
  }

  /**
   * What the page at `url` links to, from the page just read (`page`), and remembered. A page
   * answered 304 (`page` undefined) has not changed, so neither have its links: the remembered
   * site is confirmed. Without one (the page was read before as a topic, never as a site) it is
   * read once more, unconditionally. Throws when that read fails.
   */
  async learn(url: string, page: FetchedPage | undefined, known: Site | undefined): Promise<Site> {
    const now = this.deps.now();
    if (!page && known) {
      const confirmed = { ...known, whenChecked: now };
      await this.deps.store.putSite(confirmed);
      return confirmed;
    }
    const read = page ?? (await this.read(url));
    const discovery = parseDiscovery(read.url, read.headers, read.body);
    const site: Site = {
      url,
      feeds: feedsOf(discovery, url, this.deps.config.maxUrlLength),
      hubs: discovery.hubs.slice(0, MAX_FEEDS_PER_SITE),
      ...(discovery.self !== null && { self: discovery.self }),
      whenChecked: now,
      whenCreated: known?.whenCreated ?? now,
    };
    // A page without feeds is not remembered (unless it had some before), so a site that adds
    // its feed links is seen at its next ping rather than a recheck period later.
    if (site.feeds.length > 0 || known) await this.deps.store.putSite(site);
    return site;
  }

  /** An unconditional read of the page, through the one outbound client and its guard. */
  private async read(url: string): Promise<FetchedPage> {
    const res = await this.deps.http.request('fetch', url, { method: 'GET', maxRedirects: FETCH_MAX_REDIRECTS });
    if (res.status < 200 || res.status >= 300) throw new FetchFailed(`HTTP ${res.status}`);
    return { url: res.url, headers: res.headers, body: res.body };
  }
}
