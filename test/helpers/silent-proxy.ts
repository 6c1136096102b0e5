// A TCP proxy on 127.0.0.1 in front of a server's unix socket (the throwaway PostgreSQL of
// test/helpers/pg-server.ts) that can go silent: a network partition, a frozen VM, a paused
// container. Silent, it forwards nothing either way and closes nothing, and new connections are
// accepted but not carried on; heard again, what waited is carried on in order, as TCP would
// once its retransmissions get through.
import net, { type AddressInfo } from 'node:net';

export interface SilentProxy {
  /** host:port to connect to instead of the server. */
  host: string;
  port: number;
  /** Stops forwarding in both directions, keeping every connection open. */
  silence(): void;
  /** Forwards again, what waited first. */
  heal(): void;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Whether it is silent now. */
  readonly silent: boolean;
  close(): Promise<void>;
}

// Unpiped as well as paused: a pipe resumes its source when the destination drains.
function hush(a: net.Socket, b: net.Socket): void {
  a.unpipe(b);
  b.unpipe(a);
  a.pause();
  b.pause();
}

function flow(a: net.Socket, b: net.Socket): void {
  a.pipe(b);
  b.pipe(a);
}

export async function startSilentProxy(socketPath: string): Promise<SilentProxy> {
  let silent = false;
  let accepted = 0;
  const pairs = new Set<[net.Socket, net.Socket | undefined]>();
  const waiting: (() => void)[] = [];

  const carry = (client: net.Socket): void => {
    const upstream = net.createConnection(socketPath);
    const pair: [net.Socket, net.Socket | undefined] = [client, upstream];
    pairs.add(pair);
    const end = (): void => {
      client.destroy();
      upstream.destroy();
      pairs.delete(pair);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    if (silent) hush(client, upstream);
    else flow(client, upstream);
  };

  const server = net.createServer((client) => {
    accepted++;
    if (!silent) return carry(client);
    client.pause();
    const pair: [net.Socket, net.Socket | undefined] = [client, undefined];
    pairs.add(pair);
    client.on('error', () => pairs.delete(pair));
    waiting.push(() => {
      pairs.delete(pair);
      if (!client.destroyed) carry(client);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    host: '127.0.0.1',
    port,
    get accepted() {
      return accepted;
    },
    get silent() {
      return silent;
    },
    silence: () => {
      silent = true;
      // pause() stops reading: the bytes wait in the kernel's buffers, neither carried nor lost.
      for (const [a, b] of pairs) if (b) hush(a, b);
    },
    heal: () => {
      silent = false;
      for (const [a, b] of pairs) if (b) flow(a, b);
      for (const go of waiting.splice(0)) go();
    },
    close: async () => {
      for (const [a, b] of pairs) {
        a.destroy();
        b?.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
