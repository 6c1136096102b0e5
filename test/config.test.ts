// Configuration: every variable is read and validated in one place, a bad value stops start-up
// with a message naming the variable, and the README documents every variable the code reads.
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { ConfigError, loadConfig } from '../lib/config.js';
import { HUB_ARGS } from './helpers/child-hub.js';

/** A value each variable must refuse. */
const BAD: Record<string, string> = {
  PORT: '70000',
  PUBLIC_URL: 'ftp://hub.example',
  REQUEST_TIMEOUT_MS: 'soon',
  RSSCLOUD_LEASE_SECONDS: '-1',
  MAX_CONSECUTIVE_ERRORS: '0',
  FEEDS_RETENTION_DAYS: 'a week',
  MAX_UNFOLLOWED_TOPICS: '-5',
  OUTBOX_MAX_BYTES: '256MB',
  MIN_SECS_BETWEEN_PINGS: '1.5',
  TRUST_PROXY: 'true',
  FETCH_ALLOW_CIDRS: '10.0.0.0/33',
  CALLBACK_ALLOW_CIDRS: 'not-an-address',
  ENABLE_TEST_API: 'maybe',
  WEBSUB_SIGNATURE_ALGORITHM: 'md5',
  WEBSUB_LEASE_MIN_SECONDS: '0',
  PUBLISHER_SECRETS: 'no-equals-sign',
  LOG_LEVEL: 'loud',
  ADMIN_TOKEN: 'short',
  RATE_LIMIT_PER_MINUTE: 'lots',
  POLL_ENABLED: 'sometimes',
  DATABASE_URL: 'mysql://db.example/pushbutton',
  // 0 ms would take every delivery's slot back at once: DELIVERY_LINGERING=0 is the way to turn lingering off.
  DELIVERY_LINGER_AFTER_MS: '0',
  DELIVERY_LINGERING: '-1',
};

describe('configuration', () => {
  it('has the documented defaults', () => {
    const c = loadConfig({});
    expect(c.port).to.equal(5337);
    expect(c.requestTimeoutMs).to.equal(4000);
    expect(c.rssCloudLeaseSeconds).to.equal(90000);
    expect(c.maxConsecutiveErrors).to.equal(3);
    expect(c.feedsRetentionDays).to.equal(7);
    expect(c.maxUnfollowedTopics).to.equal(10000);
    expect(c.outboxMaxBytes).to.equal(268435456);
    expect(c.minSecsBetweenPings).to.equal(0);
    expect(c.trustProxy).to.deep.equal([]);
    expect(c.fetchAllowCidrs).to.deep.equal([]);
    expect(c.callbackAllowCidrs).to.deep.equal([]);
    expect(c.enableTestApi).to.equal(false);
    expect(c.publicUrl).to.equal('http://localhost:5337');
    expect(c.websubLeaseDefaultSeconds).to.equal(864000);
    // Longer than the 60 s idle timeout of the usual load balancers.
    expect(c.serverKeepAliveTimeoutMs).to.equal(65000);
    expect(c.deliveryLingerAfterMs).to.equal(1000);
    expect(c.deliveryLingering).to.equal(256);
    expect(loadConfig({ DELIVERY_LINGERING: '0' }).deliveryLingering, 'lingering turned off').to.equal(0);
  });

  for (const [name, value] of Object.entries(BAD)) {
    it(`refuses ${name}=${value} with a message naming ${name}`, () => {
      expect(() => loadConfig({ [name]: value }))
        .to.throw(ConfigError)
        .with.property('message')
        .that.satisfies((m: string) => m.startsWith(`${name}:`));
    });
  }

  /** True when loadConfig refuses env with a ConfigError naming `name`. */
  function refuses(env: Record<string, string>, name: string): boolean {
    try {
      loadConfig(env);
      return false;
    } catch (e) {
      return e instanceof ConfigError && e.message.startsWith(`${name}:`);
    }
  }

  for (const name of ['FETCH_ALLOW_CIDRS', 'CALLBACK_ALLOW_CIDRS', 'TRUST_PROXY']) {
    it(`refuses a block in ${name} whose prefix is left off or not a number: "10.0.0.0/" is not the whole internet`, () => {
      for (const value of ['10.0.0.0/', '127.0.0.1/,10.0.0.0/8', '::1/', '10.0.0.0/0x8', '10.0.0.0/8.0', '10.0.0.0/+8']) {
        expect(refuses({ [name]: value }, name), `${name}=${value}`).to.equal(true);
      }
      expect(loadConfig({ [name]: ' 10.0.0.0/8, 127.0.0.1 ,::1/128,' })[name === 'TRUST_PROXY' ? 'trustProxy' : name === 'FETCH_ALLOW_CIDRS' ? 'fetchAllowCidrs' : 'callbackAllowCidrs']).to.deep.equal([
        '10.0.0.0/8',
        '127.0.0.1',
        '::1/128',
      ]);
    });
  }

  // Node's setTimeout and setInterval run a wait past 2^31-1 ms after 1 ms.
  for (const name of ['SSE_HEARTBEAT_MS', 'FETCH_MIN_INTERVAL_MS', 'WEBSUB_RETRY_MAX_MS', 'WEBSUB_RETRY_BASE_MS', 'BREAKER_MAX_COOLDOWN_MS', 'BREAKER_COOLDOWN_MS']) {
    it(`refuses a ${name} longer than Node's timers can wait (2147483647 ms)`, () => {
      // Each base with a maximum as long, so only the bound on timers is at stake.
      const pair = name === 'WEBSUB_RETRY_BASE_MS' ? 'WEBSUB_RETRY_MAX_MS' : name === 'BREAKER_COOLDOWN_MS' ? 'BREAKER_MAX_COOLDOWN_MS' : undefined;
      const env = (v: string): Record<string, string> => ({ [name]: v, ...(pair && { [pair]: '2147483647' }) });
      expect(refuses(env('2147483648'), name)).to.equal(true);
      expect(refuses(env('2592000000'), name)).to.equal(true);
      expect(() => loadConfig(env('2147483647'))).not.to.throw();
    });
  }

  it('refuses a first retry or pause longer than the longest, both given (seconds written where ms are meant)', () => {
    expect(refuses({ WEBSUB_RETRY_BASE_MS: '5000', WEBSUB_RETRY_MAX_MS: '3600' }, 'WEBSUB_RETRY_BASE_MS')).to.equal(true);
    expect(refuses({ BREAKER_COOLDOWN_MS: '30000', BREAKER_MAX_COOLDOWN_MS: '600' }, 'BREAKER_COOLDOWN_MS')).to.equal(true);
    expect(refuses({ BREAKER_COOLDOWN_MS: '900000' }, 'BREAKER_COOLDOWN_MS')).to.equal(true);
    const c = loadConfig({ WEBSUB_RETRY_BASE_MS: '500', WEBSUB_RETRY_MAX_MS: '500', BREAKER_COOLDOWN_MS: '500', BREAKER_MAX_COOLDOWN_MS: '500' });
    expect([c.websubRetryBaseMs, c.websubRetryMaxMs, c.breakerCooldownMs, c.breakerMaxCooldownMs]).to.deep.equal([500, 500, 500, 500]);
  });

  it('brings the default first retry or pause down to a longest given alone, a bound on every wait', () => {
    const c = loadConfig({ WEBSUB_RETRY_MAX_MS: '3000', BREAKER_MAX_COOLDOWN_MS: '10000' });
    expect([c.websubRetryBaseMs, c.websubRetryMaxMs, c.breakerCooldownMs, c.breakerMaxCooldownMs]).to.deep.equal([3000, 3000, 10000, 10000]);
  });

  for (const name of ['RSSCLOUD_LEASE_SECONDS', 'WEBSUB_LEASE_MAX_SECONDS', 'WEBSUB_LEASE_MIN_SECONDS']) {
    it(`refuses a ${name} past 100 years, whose expiry no date can show`, () => {
      const env = (v: string): Record<string, string> => ({ [name]: v, ...(name === 'WEBSUB_LEASE_MIN_SECONDS' && { WEBSUB_LEASE_MAX_SECONDS: v }) });
      expect(refuses(env('9999999999999'), name)).to.equal(true);
      expect(refuses(env('3153600001'), name)).to.equal(true);
      expect(() => loadConfig(env('3153600000'))).not.to.throw();
    });
  }

  it('refuses a HOST that is not an address or a host name, naming HOST and not PUBLIC_URL', () => {
    for (const value of ['0.0.0.0:5337', 'http://0.0.0.0', '[::1]', 'not a host', 'localhost/']) {
      expect(refuses({ HOST: value }, 'HOST'), value).to.equal(true);
      expect(refuses({ HOST: value, PUBLIC_URL: 'https://hub.example' }, 'HOST'), value).to.equal(true);
    }
    for (const value of ['127.0.0.1', '::', 'fe80::1%eth0', 'localhost', 'hub_1', 'hub.internal.']) {
      expect(loadConfig({ HOST: value, PUBLIC_URL: 'https://hub.example' }).host, value).to.equal(value);
    }
  });

  it('refuses a PUBLIC_URL written without its scheme (the host alone), saying it is not an absolute URL', () => {
    for (const value of ['hub.example', 'hub.example/push', '/push']) {
      expect(() => loadConfig({ PUBLIC_URL: value }), value).to.throw(ConfigError, `PUBLIC_URL: "${value}" is not an absolute URL`);
    }
  });

  it('refuses a PUBLIC_URL ending in a bare "?" or "#", which every path appended to it would follow', () => {
    for (const value of ['https://hub.example/?', 'https://hub.example/#', 'https://hub.example/push?']) {
      expect(refuses({ PUBLIC_URL: value }, 'PUBLIC_URL'), value).to.equal(true);
    }
    expect(loadConfig({ PUBLIC_URL: 'https://hub.example/push/' }).publicUrl).to.equal('https://hub.example/push');
  });

  it('refuses a PUBLISHER_SECRETS origin that is not http(s) (no scheme), naming it and not the secret', () => {
    for (const value of ['blog.example:8080=s3cret', 'mailto:me@blog.example=s3cret', 'https://blog.example= ']) {
      expect(refuses({ PUBLISHER_SECRETS: value }, 'PUBLISHER_SECRETS'), value).to.equal(true);
    }
    try {
      loadConfig({ PUBLISHER_SECRETS: 'blog.example:8080=s3cret' });
    } catch (e) {
      expect((e as Error).message).to.contain('blog.example:8080').and.not.contain('s3cret');
    }
  });

  it('reads "origin = secret" (spaces around the "=") as the secret itself', () => {
    const c = loadConfig({ PUBLISHER_SECRETS: 'https://a.example = s3cret , https://b.example/feed=t0k=en' });
    expect([...c.publisherSecrets]).to.deep.equal([
      ['https://a.example', 's3cret'],
      ['https://b.example', 't0k=en'],
    ]);
  });

  it('refuses a DATA_DIR starting with "~", which nothing expands', () => {
    expect(refuses({ DATA_DIR: '~/pushbutton' }, 'DATA_DIR')).to.equal(true);
    expect(refuses({ DATA_DIR: '~' }, 'DATA_DIR')).to.equal(true);
    expect(loadConfig({ DATA_DIR: '/var/lib/pushbutton' }).dataDir).to.equal('/var/lib/pushbutton');
  });

  it('stops start-up with the variable named on stderr and exit code 1', async () => {
    const child = spawn(process.execPath, [...HUB_ARGS], {
      env: { ...process.env, PORT: '0', HOST: '127.0.0.1', REQUEST_TIMEOUT_MS: 'soon', DATABASE_URL: '' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code).to.equal(1);
    expect(stderr).to.contain('REQUEST_TIMEOUT_MS');
  });

  it('takes the default the README table gives each variable', async () => {
    const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
    // | `NAME` | `default` | …: the rows whose default is a value one could write (not "unset",
    // "empty", or PUBLIC_URL's derived `http://localhost:<PORT>`).
    const rows = [...readme.matchAll(/^\| `([A-Z][A-Z0-9_]+)` \| `([^`<]*)` \|/gm)].map((m) => [m[1]!, m[2]!] as const);
    expect(rows.length).to.be.greaterThan(60);
    const defaults = loadConfig({});
    const differ = rows.filter(([name, value]) => {
      try {
        expect(loadConfig({ [name]: value })).to.deep.equal(defaults);
        return false;
      } catch {
        return true;
      }
    });
    expect(differ.map(([name, value]) => `${name}=${value}`), 'README defaults the code does not have').to.deep.equal([]);
  });

  it("takes the default SECURITY.md's limits table gives each variable, a share of MAX_BODY_BYTES included", async () => {
    const security = await readFile(new URL('../SECURITY.md', import.meta.url), 'utf8');
    const rows = [...security.matchAll(/^\| `([A-Z][A-Z0-9_]+)` \| `([^`]*)` \|/gm)].map((m) => [m[1]!, m[2]!] as const);
    expect(rows.length).to.be.greaterThan(10);
    // What the variable is at a given MAX_BODY_BYTES, by the row: a number, `MAX_BODY_BYTES`, or `min(MAX_BODY_BYTES, N)`.
    const valueAt = (value: string, maxBody: number): string => {
      const share = /^min\(MAX_BODY_BYTES, (\d+)\)$/.exec(value);
      if (share) return String(Math.min(maxBody, Number(share[1])));
      return value === 'MAX_BODY_BYTES' ? String(maxBody) : value;
    };
    const differ = rows.filter(([name, value]) =>
      [2048, 1048576].some((maxBody) => {
        // The base itself is compared with no setting at all.
        const base: Record<string, string> = name === 'MAX_BODY_BYTES' ? {} : { MAX_BODY_BYTES: String(maxBody) };
        try {
          expect(loadConfig({ ...base, [name]: valueAt(value, maxBody) })).to.deep.equal(loadConfig(base));
          return false;
        } catch {
          return true;
        }
      }),
    );
    expect(differ.map(([name, value]) => `${name}=${value}`), 'SECURITY.md defaults the code does not have').to.deep.equal([]);
  });

  it("reads PGSSLMODE (libpq's variable) into a DATABASE_URL that names no sslmode, and refuses a mode it cannot honour", () => {
    const url = (env: Record<string, string>): string | undefined => loadConfig(env).databaseUrl;
    expect(url({ DATABASE_URL: 'postgres://hub@db.example/pushbutton', PGSSLMODE: 'require' })).to.equal('postgres://hub@db.example/pushbutton?sslmode=require');
    expect(url({ DATABASE_URL: 'postgres://hub@db.example/pushbutton?application_name=x', PGSSLMODE: 'prefer' })).to.equal('postgres://hub@db.example/pushbutton?application_name=x&sslmode=prefer');
    // The URL's own word wins, as in libpq.
    expect(url({ DATABASE_URL: 'postgres://hub@db.example/pushbutton?sslmode=disable', PGSSLMODE: 'require' })).to.equal('postgres://hub@db.example/pushbutton?sslmode=disable');
    expect(url({ DATABASE_URL: 'postgres://hub@db.example/pushbutton' })).to.equal('postgres://hub@db.example/pushbutton');
    // Without DATABASE_URL there is no connection for it to describe.
    expect(url({ PGSSLMODE: 'require' })).to.equal(undefined);
    for (const bad of ['allow', 'on', 'REQUIRE']) {
      expect(() => loadConfig({ DATABASE_URL: 'postgres://hub@db.example/pushbutton', PGSSLMODE: bad }), bad).to.throw(ConfigError, /PGSSLMODE/);
      // The same in the URL, which the driver read as verify-full.
      expect(() => loadConfig({ DATABASE_URL: `postgres://hub@db.example/pushbutton?sslmode=${bad}` }), bad).to.throw(ConfigError, /DATABASE_URL.*sslmode/);
    }
  });

  it('documents in the README every variable the code reads', async () => {
    const source = await readFile(new URL('../lib/config.ts', import.meta.url), 'utf8');
    const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
    const names = [...new Set([...source.matchAll(/\(env, '([A-Z][A-Z0-9_]+)'/g)].map((m) => m[1]!))];
    expect(names.length).to.be.greaterThan(40);
    const missing = names.filter((n) => !readme.includes(`| \`${n}\``));
    expect(missing, 'variables missing from the README configuration table').to.deep.equal([]);
  });
});
