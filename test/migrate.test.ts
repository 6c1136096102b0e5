// `npm run migrate`: the embedded store in DATA_DIR copied into PostgreSQL, run as a user would
// run it, twice, with the copy compared record by record (outbox bodies included).
// The script is `npm run build && node dist/lib/migrate.js`: the suite builds once, as the script
// would, and each run is the built file (a build per run cost ~6 s, six times).
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { newTopic } from '../lib/model.js';
import { LowdbStore } from '../lib/store/lowdb-store.js';
import { PgStore } from '../lib/store/pg-store.js';
import { dropDatabaseSchema, freshDatabaseUrl } from './helpers/postgres.js';
import { fullState, outbox, sub, verification } from './helpers/store-contract.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

const MIGRATE_SCRIPT = 'npm run build && node dist/lib/migrate.js';

function run(command: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const { DATABASE_URL: _url, DATA_DIR: _dir, ...inherited } = process.env;
    const child = spawn(command, args, { cwd: ROOT, env: { ...inherited, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** `npm run migrate` after the suite's build: its second half. */
function migrateCommand(env: Record<string, string>): Promise<Run> {
  return run(process.execPath, ['dist/lib/migrate.js'], env);
}

/** "subscriptions  5 copied: 3 new, 1 updated, 1 already there" → the numbers. */
function copied(stdout: string, what: string): { read: number; inserted: number; updated: number; unchanged: number } {
  const m = new RegExp(`^${what}\\s+(\\d+) copied: (\\d+) new, (\\d+) updated, (\\d+) already there$`, 'm').exec(stdout);
  if (!m) throw new Error(`no "${what}" line in:\n${stdout}`);
  return { read: Number(m[1]), inserted: Number(m[2]), updated: Number(m[3]), unchanged: Number(m[4]) };
}

describe('pushbutton migrate (embedded store → PostgreSQL)', function () {
  this.timeout(30_000);
  let dir: string;
  let url: string;

  before(async function () {
    this.timeout(120_000);
    const pkg = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts.migrate).to.equal(MIGRATE_SCRIPT);
    const build = await run('npm', ['run', '--silent', 'build']);
    expect(build.code, build.stdout + build.stderr).to.equal(0);
  });

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'pushbutton-migrate-'));
    url = await freshDatabaseUrl('migrate');
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
    await dropDatabaseSchema(url);
  });

  it('copies every record, outbox bodies included; a second run changes nothing; a third copies only what changed', async () => {
    const embedded = new LowdbStore({ dir });
    await embedded.open();
    await embedded.putTopic({ ...newTopic('https://blog.example/feed.xml'), version: 4, lastHash: 'abc', etag: '"v4"', fingerprints: ['e1', 'e2'] });
    await embedded.putTopic(newTopic('https://other.example/atom'));
    await embedded.putSubscription(sub('https://blog.example/feed.xml', 'http://reader.example/notify', { ctUpdates: 3, whenLastUpdate: 10 }));
    await embedded.putSubscription(sub('https://blog.example/feed.xml', 'https://reader.example/notify', { protocol: 'https-post' }));
    await embedded.putSubscription(sub('https://blog.example/feed.xml', 'http://river.example/RPC2', { protocol: 'xml-rpc', notifyProcedure: 'river.feedUpdated' }));
    await embedded.putSubscription(
      sub('https://blog.example/feed.xml', 'https://sub.example/cb?id=1', { protocol: 'websub', secret: 's3cret', leaseSeconds: 864000, deliveredVersion: 3, signatureAlgorithm: 'sha1', hubPath: '/' }),
    );
    await embedded.putSubscription(sub('https://other.example/atom', 'https://sub.example/cb?id=2', { protocol: 'websub' }));
    await embedded.putOutbox(outbox('https://blog.example/feed.xml', 4), Buffer.from([0, 1, 2, 255]));
    await embedded.putVerification(verification('b0e3', { secret: 'pending secret', leaseSeconds: 3600, verifyToken: 'tok', signatureAlgorithm: 'sha1', hubPath: '/websub/' }));
    // A publish answered 204 whose read the stopped hub had not finished: the hub on PostgreSQL owes it too.
    await embedded.putPendingReads(['https://blog.example/feed.xml'], 1_700_000_000_123);
    const expected = await fullState(embedded);
    await embedded.close();

    const env = { DATA_DIR: dir, DATABASE_URL: url };
    const first = await migrateCommand(env);
    expect(first.code, first.stderr).to.equal(0);
    expect(first.stdout).to.match(/^schema: version 0 → \d+/m);
    expect(copied(first.stdout, 'topics')).to.deep.equal({ read: 2, inserted: 2, updated: 0, unchanged: 0 });
    expect(copied(first.stdout, 'subscriptions')).to.deep.equal({ read: 5, inserted: 5, updated: 0, unchanged: 0 });
    expect(copied(first.stdout, 'outbox')).to.deep.equal({ read: 1, inserted: 1, updated: 0, unchanged: 0 });
    expect(copied(first.stdout, 'verifications')).to.deep.equal({ read: 1, inserted: 1, updated: 0, unchanged: 0 });
    expect(copied(first.stdout, 'pending reads')).to.deep.equal({ read: 1, inserted: 1, updated: 0, unchanged: 0 });

    const check = async (): Promise<void> => {
      const pgStore = new PgStore({ connectionString: url });
      await pgStore.open();
      try {
        expect(await fullState(pgStore)).to.deep.equal(expected);
      } finally {
        await pgStore.close();
      }
    };
    await check();

    const second = await migrateCommand(env);
    expect(second.code, second.stderr).to.equal(0);
    expect(second.stdout).to.match(/^schema: version \d+, up to date$/m);
    for (const [what, n] of [['topics', 2], ['subscriptions', 5], ['outbox', 1], ['verifications', 1], ['pending reads', 1]] as const) {
      expect(copied(second.stdout, what)).to.deep.equal({ read: n, inserted: 0, updated: 0, unchanged: n });
    }
    await check();

    // The embedded store moved on (a delivery counted, a new subscriber): only that is copied.
    const again = new LowdbStore({ dir });
    await again.open();
    await again.putSubscription(sub('https://blog.example/feed.xml', 'http://reader.example/notify', { ctUpdates: 4, whenLastUpdate: 20 }));
    await again.putSubscription(sub('https://other.example/atom', 'http://new.example/notify'));
    const expectedNow = await fullState(again);
    await again.close();
    const third = await migrateCommand(env);
    expect(third.code, third.stderr).to.equal(0);
    expect(copied(third.stdout, 'subscriptions')).to.deep.equal({ read: 6, inserted: 1, updated: 1, unchanged: 4 });
    expect(copied(third.stdout, 'topics')).to.deep.equal({ read: 2, inserted: 0, updated: 0, unchanged: 2 });
    const pgStore = new PgStore({ connectionString: url });
    await pgStore.open();
    try {
      expect(await fullState(pgStore)).to.deep.equal(expectedNow);
    } finally {
      await pgStore.close();
    }
  });

  it('copies everything else when an outbox body is lost from the data directory, and names what it left out', async () => {
    const embedded = new LowdbStore({ dir });
    await embedded.open();
    await embedded.putSubscription(sub('https://blog.example/feed.xml', 'http://reader.example/notify'));
    // Bodies this large are files of their own under content/, which an operator or a bad disk can lose.
    await embedded.putOutbox(outbox('https://blog.example/feed.xml', 1), Buffer.alloc(64 * 1024, 'a'));
    await embedded.putOutbox(outbox('https://blog.example/feed.xml', 2), Buffer.alloc(64 * 1024, 'b'));
    await embedded.putVerification(verification('after-the-outbox'));
    await embedded.close();
    const [lost] = (await readdir(path.join(dir, 'content'))).filter((f) => f.endsWith('-1.bin'));
    await rm(path.join(dir, 'content', lost!));

    // Failed before, at that entry, on every run: what came after it (here the verification) never moved.
    const r = await migrateCommand({ DATA_DIR: dir, DATABASE_URL: url });
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stderr).to.contain('warning: outbox entry https://blog.example/feed.xml version 1 has no body in DATA_DIR: not copied');
    expect(r.stdout).to.match(/^outbox\s+2 copied: 1 new, 0 updated, 0 already there, 1 skipped/m);
    expect(copied(r.stdout, 'verifications')).to.deep.equal({ read: 1, inserted: 1, updated: 0, unchanged: 0 });
    const pgStore = new PgStore({ connectionString: url });
    await pgStore.open();
    try {
      expect((await pgStore.listOutbox()).map((e) => e.version)).to.deep.equal([2]);
      expect((await pgStore.getOutboxBody('https://blog.example/feed.xml', 2))?.equals(Buffer.alloc(64 * 1024, 'b'))).to.equal(true);
      expect((await pgStore.listSubscriptions()).length).to.equal(1);
    } finally {
      await pgStore.close();
    }
  });

  it('says so when a journal line of the data directory is damaged, and copies the records after it', async () => {
    const embedded = new LowdbStore({ dir });
    await embedded.open();
    for (const p of ['one', 'two', 'three']) await embedded.putSubscription(sub('https://blog.example/feed.xml', `http://reader.example/${p}`));
    await embedded.close();
    // One flipped byte in the first one's line, as a bad sector would leave it.
    const [segment] = (await readdir(dir)).filter((f) => /^journal-\d+\.ndjson$/.test(f));
    const lines = (await readFile(path.join(dir, segment!), 'utf8')).split('\n');
    const at = lines.findIndex((l) => l.includes('/one'));
    lines[at] = lines[at]!.slice(0, 5) + '\x01' + lines[at]!.slice(6);
    await writeFile(path.join(dir, segment!), lines.join('\n'));

    const r = await migrateCommand({ DATA_DIR: dir, DATABASE_URL: url });
    expect(r.code, r.stderr).to.equal(0);
    expect(copied(r.stdout, 'subscriptions')).to.deep.equal({ read: 2, inserted: 2, updated: 0, unchanged: 0 });
    // Said nothing before: the run that set the line aside was the only one that could tell.
    const said = r.stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((e) => String(e['msg']).includes('unreadable journal lines'));
    expect(said, r.stderr).to.include({ level: 'error', segment, keptIn: path.join(dir, `damaged-${segment}`) });
  });

  it('refuses to run beside a hub on the same data directory, before it reads or writes anything', async () => {
    const hubStore = new LowdbStore({ dir });
    await hubStore.open();
    try {
      await hubStore.putSubscription(sub('https://blog.example/feed.xml', 'http://reader.example/notify'));
      const r = await migrateCommand({ DATA_DIR: dir, DATABASE_URL: url });
      expect(r.code).to.equal(1);
      expect(r.stderr).to.include(`pushbutton migrate: failed: ${dir} is in use by another process (pid ${process.pid})`);
      expect(r.stdout).to.not.include('copied');
      // The running store's files were left alone: its write is still there after a reopen.
      await hubStore.putSubscription(sub('https://blog.example/feed.xml', 'https://reader.example/notify'));
    } finally {
      await hubStore.close();
    }
    const reopened = new LowdbStore({ dir });
    await reopened.open();
    expect((await reopened.listSubscriptions()).map((s) => s.callback).sort()).to.deep.equal(['http://reader.example/notify', 'https://reader.example/notify']);
    await reopened.close();
  });

  it('explains what it needs when DATABASE_URL or the data directory is missing, and never prints the password', async () => {
    const noUrl = await migrateCommand({ DATA_DIR: dir });
    expect(noUrl.code).to.equal(1);
    expect(noUrl.stderr).to.contain('set DATABASE_URL');
    const noDir = await migrateCommand({ DATA_DIR: path.join(dir, 'nope'), DATABASE_URL: url });
    expect(noDir.code).to.equal(1);
    expect(noDir.stderr).to.match(/DATA_DIR .*nope is not a directory/);
    const badPassword = await migrateCommand({ DATA_DIR: dir, DATABASE_URL: 'postgres://someone:hunter2@127.0.0.1:1/db' });
    expect(badPassword.code).to.equal(1);
    expect(badPassword.stdout + badPassword.stderr).to.not.contain('hunter2');
    expect(badPassword.stdout).to.contain('postgres://someone:***@127.0.0.1:1/db');
  });
});
