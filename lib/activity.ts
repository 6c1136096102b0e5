// What the hub has been doing, for the operator: a bounded ring of recent events (pings,
// fetches, subscriptions, verifications, deliveries) that the dashboard shows and streams.
// Callback URLs never appear here, only their hosts; secrets never reach it at all.
import { EventEmitter } from 'node:events';

export type ActivityKind = 'ping' | 'publish' | 'fetch' | 'subscribe' | 'unsubscribe' | 'verify' | 'deny' | 'delivery';

export interface ActivityInput {
  kind: ActivityKind;
  topic: string;
  ok: boolean;
  protocol?: string;
  /** A host (never a full callback URL), a status, or a short reason. */
  detail?: string;
}

export interface Activity extends ActivityInput {
  id: number;
  at: number;
}

/** Emits 'activity' (Activity) for every event recorded. */
export class ActivityLog extends EventEmitter {
  private readonly ring: Activity[] = [];
  private seq = 0;

  constructor(
    private readonly capacity = 500,
    private readonly now: () => number = Date.now,
  ) {
    super();
    this.setMaxListeners(0);
  }

  record(input: ActivityInput): Activity {
    const a: Activity = { id: ++this.seq, at: this.now(), ...input };
    this.ring.push(a);
    if (this.ring.length > this.capacity) this.ring.shift();
    this.emit('activity', a);
    return a;
  }

  recent(limit = 100, filter: (a: Activity) => boolean = () => true): Activity[] {
    const out: Activity[] = [];
    for (let i = this.ring.length - 1; i >= 0 && out.length < limit; i--) {
      const a = this.ring[i]!;
      if (filter(a)) out.push(a);
    }
    return out;
  }
}
