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

  it(`makes the event at once for a body over ${STREAM_BODY_MAX} bytes, so that the backlog never holds the body`, () => {
    const reads = { n: 0 };
    const change = new LazyChange(content(STREAM_BODY_MAX + 1, reads));
    expect(reads.n).to.equal(1);
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
