import type { Socket, TCPSocketListener } from "bun";

type Side = { peer?: Socket<Side>; held: Uint8Array[]; upstream?: boolean };

/**
 * A TCP proxy that plays the network between the service and a server (PostgreSQL here), in the
 * test process, so that no shared service is ever touched:
 * - `refuse()`: every live connection is cut and new ones are refused (ECONNREFUSED) until `heal()`;
 * - `resetAll()`: every live connection is cut once; new ones go through;
 * - `stall()`: sockets stay open but nothing moves either way until `heal()`, which delivers
 *   everything that waited, as TCP does once a stalled network comes back;
 * - `loseReplies()`: what the server sends on the live connections is dropped (requests still
 *   arrive and run); new connections are not affected.
 */
export async function startTcpProxy(targetHost: string, targetPort: number) {
  const sockets = new Set<Socket<Side>>();
  let stalled = false;
  const deaf = new Set<Socket<Side>>();
  let listener: TCPSocketListener<Side> | undefined;
  let port = 0;

  const send = (socket: Socket<Side>, chunk: Uint8Array) => {
    if (deaf.has(socket)) return;
    const { peer } = socket.data;
    if (stalled || !peer) socket.data.held.push(new Uint8Array(chunk));
    else peer.write(chunk);
  };
  const release = (socket: Socket<Side>) => {
    const { peer, held } = socket.data;
    if (!peer) return;
    for (const chunk of held.splice(0)) peer.write(chunk);
  };
  const cut = (socket: Socket<Side>) => {
    sockets.delete(socket);
    deaf.delete(socket);
    socket.terminate();
  };
  const handlers = {
    data: send,
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
          client.data = { held: [] };
          sockets.add(client);
          Bun.connect<Side>({
            hostname: targetHost,
            port: targetPort,
            data: { held: [], upstream: true },
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

export type TcpProxy = Awaited<ReturnType<typeof startTcpProxy>>;
