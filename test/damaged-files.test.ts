// What an operator meets when a file in DATA_DIR is damaged by something other than a crash of
// the hub (a hand edit, a restore from the wrong place, another program): the start stops with
// the file named and what is wrong with it, rather than a TypeError from deep inside open().
import { expect } from 'chai';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startTestHub, tempDataDir } from './helpers/hub.js';
import { embeddedOnly } from './helpers/store-under-test.js';
import { emptyShard, shardFileName } from '../lib/store/snapshot-file.js';

async function startError(dir: string): Promise<string> {
  try {
    const hub = await startTestHub({}, dir);
    await hub.close();
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
  throw new Error('the hub started');
}

embeddedOnly('writes snapshot shards into DATA_DIR', () => describe('embedded store: a snapshot shard of the right format but the wrong shape', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await tempDataDir();
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('stops the start naming the file and the list that is not one', async () => {
    const file = path.join(dir, shardFileName(7));
    await writeFile(file, JSON.stringify({ ...emptyShard(7), subscriptions: { a: 1 } }));
    const message = await startError(dir);
    expect(message).to.include(file).and.include('subscriptions').and.include('restore it from a backup');
  });

  it('stops the start naming the file and the record that cannot be read', async () => {
    const file = path.join(dir, shardFileName(3));
    const sub = { topic: 'http://feed.example/t', callback: 'http://cb.example/c', protocol: 'websub', whenExpires: 4e12 };
    await writeFile(file, JSON.stringify({ ...emptyShard(3), subscriptions: [sub, null], topics: [{ url: 'http://feed.example/t', version: 0 }] }));
    const message = await startError(dir);
    expect(message).to.include(file).and.include('subscriptions[1]');
  });
}));
