// Unit test of the change event on the bus (lib/change-event.ts): when its entries are read,
// and what it holds until then.
import { expect } from 'chai';
import { LazyChange, STREAM_BODY_MAX, fitEvent } from '../lib/change-event.js';
import type { Content } from '../lib/notifier/sender.js';

function content(bodyBytes: number, reads: { n: number }): Content {
  return {
    topic: 'http://a.example/feed',
    version: 2,
    body: Buffer.alloc(bodyBytes, 0x20),
    contentType: 'application/rss+xml',
    entries: () => {
      reads.n++;
      return [{ id: 'e1', title: 'One', link: null, published: null, summary: 'x'.repeat(2000) }];
    },
  };
}

describe('change events on the bus', () => {
  it('reads a change\'s entries when it is first serialised, once, and not before', () => {
    const reads = { n: 0 };
    const change = new LazyChange(content(1000, reads));
    expect(change.topic).to.equal('http://a.example/feed');
    expect(reads.n).to.equal(0);
    const first = JSON.stringify(change);
    expect(JSON.stringify(change)).to.equal(first);
    expect(reads.n).to.equal(1);
    expect(JSON.parse(first)).to.deep.include({ topic: 'http://a.example/feed', version: 2, body: null });
  });

  it(`announces a change over ${STREAM_BODY_MAX} bytes without its entries or body, never reading them or holding the body`, () => {
    const reads = { n: 0 };
    const big = content(STREAM_BODY_MAX + 1, reads);
    const change = new LazyChange(big);
    expect(JSON.parse(JSON.stringify(change))).to.deep.equal({ topic: 'http://a.example/feed', version: 2, contentType: 'application/rss+xml', entries: null, body: null });
    expect(reads.n).to.equal(0);
    // Nothing of the content is reachable from the event the backlog keeps.
    expect(JSON.stringify(Object.values(change))).to.not.include('"type":"Buffer"');
    const plain = new LazyChange({ ...big, contentType: 'text/plain', entries: undefined });
    expect(JSON.parse(JSON.stringify(plain))).to.deep.include({ entries: null, body: null });
  });

  it(`reads the entries of a change of exactly ${STREAM_BODY_MAX} bytes`, () => {
    const reads = { n: 0 };
    const change = new LazyChange(content(STREAM_BODY_MAX, reads));
    expect((JSON.parse(JSON.stringify(change)) as { entries: { id: string }[] }).entries.map((e) => e.id)).to.deep.equal(['e1']);
    expect(reads.n).to.equal(1);
  });

  it('fits a change for another process by cutting summaries first', () => {
    const fitted = fitEvent('change', new LazyChange(content(10, { n: 0 })), 800) as { entries: { summary: string | null }[] };
    expect(Buffer.byteLength(JSON.stringify(fitted))).to.be.at.most(800);
    expect(fitted.entries).to.have.length(1);
    expect(fitted.entries[0]!.summary!.length).to.be.lessThan(2000);
    expect(fitEvent('activity', {}, 800)).to.equal(undefined);
  });
});
