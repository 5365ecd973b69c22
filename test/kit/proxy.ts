import type { Socket, TCPSocketListener } from "bun";

type Side = {
  peer?: Socket<Side>;
  /** What waits for the peer to connect, or for a stall to end. */
  held: Uint8Array[];
  /** What the socket did not take yet: written on its drain event. */
  backlog: Uint8Array[];
  upstream: boolean;
  /** Every byte the client sent, kept only while a cutWhenSent() waits for a match. */
  sent: Uint8Array;
};

const side = (upstream: boolean): Side => ({ held: [], backlog: [], upstream, sent: new Uint8Array() });

// A socket may take part of a chunk: the rest waits for its drain event, in order.
function write(socket: Socket<Side>, chunk: Uint8Array) {
  const { backlog } = socket.data;
  if (backlog.length > 0) {
    backlog.push(new Uint8Array(chunk));
    return;
  }
  const written = socket.write(chunk);
  if (written < chunk.length) backlog.push(new Uint8Array(chunk.subarray(Math.max(written, 0))));
}

function drain(socket: Socket<Side>) {
  const { backlog } = socket.data;
  while (backlog.length > 0) {
    const chunk = backlog[0] as Uint8Array;
    const written = socket.write(chunk);
    if (written < chunk.length) {
      backlog[0] = chunk.subarray(Math.max(written, 0));
      return;
    }
    backlog.shift();
  }
}

/**
 * A TCP proxy that plays the network between the service and a server (PostgreSQL, RabbitMQ), in
 * the test process, so that no shared service is ever touched. It listens on 127.0.0.1:`port`
 * (0: a free one; a fixed one plays a dependency that comes up when the test starts the proxy):
 * - `refuse()`: every live connection is cut and new ones are refused (ECONNREFUSED) until `heal()`;
 * - `resetAll()`: every live connection is cut once; new ones go through;
 * - `stall()`: sockets stay open but nothing moves either way until `heal()`, which delivers
 *   everything that waited, as TCP does once a stalled network comes back;
 * - `loseReplies()`: what the server sends on the live connections is dropped (requests still
 *   arrive and run); new connections are not affected;
 * - `cutWhenSent(match)`: the first connection whose client has sent bytes that `match` is cut
 *   right then, before they reach the server (lost in the middle of a protocol step).
 */
export function startTcpProxy(targetHost: string, targetPort: number, port = 0) {
  const sockets = new Set<Socket<Side>>();
  let stalled = false;
  const deaf = new Set<Socket<Side>>();
  let cutMatch: ((sent: Uint8Array) => boolean) | undefined;
  let listener: TCPSocketListener<Side> | undefined;

  const cut = (socket: Socket<Side>) => {
    sockets.delete(socket);
    deaf.delete(socket);
    socket.terminate();
  };
  const send = (socket: Socket<Side>, chunk: Uint8Array) => {
    if (deaf.has(socket)) return;
    if (cutMatch && !socket.data.upstream) {
      socket.data.sent = Buffer.concat([socket.data.sent, chunk]);
      if (cutMatch(socket.data.sent)) {
        cutMatch = undefined;
        if (socket.data.peer) cut(socket.data.peer);
        cut(socket);
        return;
      }
    }
    const { peer } = socket.data;
    if (stalled || !peer) socket.data.held.push(new Uint8Array(chunk));
    else write(peer, chunk);
  };
  const release = (socket: Socket<Side>) => {
    const { peer, held } = socket.data;
    if (!peer) return;
    for (const chunk of held.splice(0)) write(peer, chunk);
  };
  const handlers = {
    data: send,
    drain,
    close(socket: Socket<Side>) {
      sockets.delete(socket);
      const { peer } = socket.data;
      if (peer) cut(peer);
    },
    error(socket: Socket<Side>) {
      cut(socket);
    },
  };

  const listen = () => {
    listener = Bun.listen<Side>({
      hostname: "127.0.0.1",
      port,
      socket: {
        ...handlers,
        open(client) {
          client.data = side(false);
          sockets.add(client);
          Bun.connect<Side>({
            hostname: targetHost,
            port: targetPort,
            data: side(true),
            socket: {
              ...handlers,
              open(upstream) {
                sockets.add(upstream);
                upstream.data.peer = client;
                client.data.peer = upstream;
                if (!stalled) release(client);
              },
            },
          }).catch(() => cut(client));
        },
      },
    });
    port = listener.port;
  };
  listen();

  const cutAll = () => {
    for (const socket of [...sockets]) cut(socket);
  };

  return {
    port,
    /** `url` with its host and port changed to the proxy's. */
    in(url: string): string {
      const through = new URL(url);
      through.hostname = "127.0.0.1";
      through.port = String(port);
      return through.toString();
    },
    refuse() {
      listener?.stop(true);
      listener = undefined;
      cutAll();
    },
    resetAll: cutAll,
    loseReplies() {
      for (const socket of sockets) if (socket.data.upstream) deaf.add(socket);
    },
    stall() {
      stalled = true;
    },
    cutWhenSent(match: (sent: Uint8Array) => boolean) {
      cutMatch = match;
    },
    heal() {
      stalled = false;
      for (const socket of sockets) release(socket);
      if (!listener) listen();
    },
    stop() {
      listener?.stop(true);
      listener = undefined;
      cutAll();
    },
  };
}

export type TcpProxy = ReturnType<typeof startTcpProxy>;
