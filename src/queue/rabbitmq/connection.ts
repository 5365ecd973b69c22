import amqp, { type ChannelModel, type ConfirmChannel, type ConsumeMessage } from "amqplib";
import type { Logger } from "../../lib/log";
import { deadline } from "../../lib/timers";

const RECONNECT_MIN_MS = 250;
const RECONNECT_MAX_MS = 5000;

/**
 * A confirm channel, and the ids of the messages its broker returned as unroutable that are not
 * yet matched to their confirm (the return arrives first; see publisher.ts `send`).
 */
export type Link = { channel: ConfirmChannel; returned: Set<string> };

/**
 * One AMQP connection with a confirm channel that comes back by itself: on loss it reconnects
 * with exponential backoff and runs `setup` (topology, consumers) again.
 */
export class RabbitConnection {
  link: Link | undefined;
  private connection: ChannelModel | undefined;
  private closing = false;
  private delay = RECONNECT_MIN_MS;
  private timer: Timer | undefined;
  private firstConnect: Promise<void>;
  private resolveFirst: () => void = () => {};

  constructor(
    private readonly url: string,
    private readonly log: Logger,
    private readonly setup: (link: Link) => Promise<void>,
  ) {
    this.firstConnect = new Promise((resolve) => {
      this.resolveFirst = resolve;
    });
    void this.connect();
  }

  /** Resolves at the first successful connection, or after `timeoutMs`, whichever is first. */
  ready(timeoutMs: number): Promise<void> {
    return deadline(this.firstConnect, timeoutMs).catch(() => {});
  }

  private async connect(): Promise<void> {
    if (this.closing) return;
    try {
      const connection = await amqp.connect(this.url);
      // close() ran while this was connecting and found nothing to close: a consumer set up now
      // would take messages after its owner stopped.
      if (this.closing) {
        await connection.close().catch(() => {});
        this.log.debug("connected after close; the connection is closed again");
        return;
      }
      this.connection = connection;
      connection.on("error", (err) => this.log.warn("broker connection error", { err }));
      connection.on("close", () => this.lost());
      const channel = await connection.createConfirmChannel();
      const link: Link = { channel, returned: new Set() };
      channel.on("error", (err) => this.log.warn("broker channel error", { err }));
      channel.on("return", (returned: ConsumeMessage) => {
        // The broker had no queue for a message (deleted while we were connected): the publish
        // fails, and a new connection declares the topology again.
        link.returned.add(returned.properties.messageId as string);
        this.log.error("broker returned an unroutable message; reconnecting to declare the queues again", {
          queue: returned.fields.routingKey,
        });
        // After the message's confirm, which follows the return, has been read.
        setImmediate(() => void channel.close().catch(() => {}));
      });
      channel.on("close", () => {
        if (this.link === link) void connection.close().catch(() => {});
      });
      await this.setup(link);
      this.link = link;
      this.delay = RECONNECT_MIN_MS;
      this.log.info("broker connected");
      this.resolveFirst();
    } catch (err) {
      this.log.warn("broker unreachable; will retry", { err, retry_in_ms: this.delay });
      await this.connection?.close().catch(() => {});
      this.connection = undefined;
      this.schedule();
    }
  }

  private lost() {
    // Lost before setup finished: setup fails and connect() schedules the retry, only once.
    if (!this.link) return;
    this.link = undefined;
    this.connection = undefined;
    if (this.closing) return;
    this.log.warn("broker connection lost; reconnecting");
    this.schedule();
  }

  private schedule() {
    if (this.closing) return;
    this.timer = setTimeout(() => void this.connect(), this.delay);
    this.delay = Math.min(this.delay * 2, RECONNECT_MAX_MS);
  }

  async close(): Promise<void> {
    this.closing = true;
    clearTimeout(this.timer);
    const connection = this.connection;
    this.link = undefined;
    this.connection = undefined;
    await connection?.close().catch(() => {});
  }
}
