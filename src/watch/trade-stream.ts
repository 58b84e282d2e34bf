// The trade stream's consumer: fills pushed by the broker go into the same trade window as the
// poll's (TradeWatch.ingest), and every (re)connect runs the poll (at once, or, while the connection
// flaps, at most once per catchUpEveryMs: see broker/stream.ts), so whatever filled while the stream
// was down is read and counted once. The stream's state is kept in the data file on each
// change, so `tradewarden status` (another process) shows it too.
// The stream is Alpaca's trade_updates (broker/stream.ts), or, with BROKER=ccxt, the stream an
// exchange pushes through ccxt's watchMyTrades (broker/ccxt-stream.ts, given as `open`).
import type { StreamState } from '../broker/stream-life.ts';
import type { OrderEnded } from '../broker/alpaca.ts';
import type { Fill, OrderUpdate } from '../broker/types.ts';
import { tradeStreamUrl } from '../broker/stream-url.ts';
import type { Clock } from '../clock.ts';
import { describeError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { Store } from '../store/store.ts';
import type { TradeWatch } from './watchdog.ts';

export type { StreamState } from '../broker/stream-life.ts';

/** What any stream of pushed fills is told, and how it is driven. */
export interface FillStreamHandlers {
  onFill: (fill: Fill) => Promise<void>;
  /** after each (re)subscription: the poll reads what the stream missed */
  onListening: () => Promise<void>;
  onStateChange: (state: StreamState) => void;
  logger: Logger;
  clock: Clock;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  catchUpEveryMs?: number;
}

export interface FillStream {
  start(): void;
  stop(): Promise<void>;
  state(): StreamState;
}

/** Alpaca's trade_updates, from the broker's URL and keys. */
interface AlpacaSource {
  baseUrl: string;
  /** APCA_STREAM_URL, when set */
  streamUrl?: string;
  keyId: string;
  secretKey: string;
}

/** Another stream (an exchange's, through ccxt): `open` loads it, or says there is none (undefined: the poll alone). */
interface OtherSource {
  /** what the log calls it */
  name: string;
  open: (handlers: FillStreamHandlers) => Promise<FillStream | undefined>;
}

export type TradeStreamWatchOptions = (AlpacaSource | OtherSource) & {
  tradeWatch: { ingest(fills: Fill[]): Promise<unknown>; poll(): Promise<unknown> };
  store: Store;
  clock: Clock;
  logger: Logger;
  /** first reconnect back-off (default 500 ms); tests and the demo shorten it */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** the shortest time between two reconnect catch-up polls (default 5 s); tests shorten it */
  catchUpEveryMs?: number;
};

export class TradeStreamWatch {
  /** Loaded on start: ws and the broker client under it cost a CLI process that never starts it. */
  private stream?: FillStream;
  private loaded = false;
  private loading?: Promise<void>;
  private stopRequested = false;
  private initial: StreamState;
  readonly url: string;
  /** Serializes the state writes so the data file ends with the latest state. */
  private persisting: Promise<void> = Promise.resolve();
  /** told when the stream says an order will trade no more (the order gate stops counting it) */
  private readonly orderEndedListeners: Array<(ended: OrderEnded) => void> = [];
  /** told of every order event and every change of status (the order gate's model of the trader's book) */
  private readonly orderUpdateListeners: Array<(update: OrderUpdate | { unreadable: string }) => void> = [];
  private readonly stateListeners: Array<(state: StreamState) => void> = [];

  constructor(private readonly options: TradeStreamWatchOptions) {
    this.url = 'open' in options ? options.name : tradeStreamUrl(options.baseUrl, options.streamUrl);
    this.initial = { status: 'stopped', since: options.clock.now(), refused: false, attempts: 0 };
  }

  /** True once it is known that the broker offers no stream (an exchange without watchMyTrades): the poll alone counts. */
  notOffered(): boolean {
    return this.loaded && !this.stream;
  }

  /** connected / reconnecting since / last message at: for status and the health registry. */
  state(): StreamState {
    return this.stream?.state() ?? { ...this.initial };
  }

  start(): void {
    this.stopRequested = false;
    if (this.stream) {
      this.stream.start();
      return;
    }
    this.loading ??= this.open()
      .then((stream) => {
        this.stream = stream;
        this.loaded = true;
        // Status says why there is no stream, not only that it is stopped.
        if (!stream) this.initial = { ...this.initial, lastError: `${this.url} is not offered: the trade poll alone counts` };
        if (!this.stopRequested) this.stream?.start();
      })
      .catch((error: unknown) => {
        this.loading = undefined;
        this.options.logger.error(`the trade stream could not be loaded (the trade poll carries on): ${describeError(error)}`);
      });
  }

  /** Orders that ended (canceled, expired, rejected, replaced, done for the day), as the stream reports them. */
  onOrderEnded(listener: (ended: OrderEnded) => void): void {
    this.orderEndedListeners.push(listener);
  }

  /** Every trade_updates event as the order it leaves (or why one could not be read). */
  onOrderUpdate(listener: (update: OrderUpdate | { unreadable: string }) => void): void {
    this.orderUpdateListeners.push(listener);
  }

  /** Every change of the stream's status (connected, reconnecting, …). */
  onStateChange(listener: (state: StreamState) => void): void {
    this.stateListeners.push(listener);
  }

  async stop(): Promise<void> {
    this.stopRequested = true;
    await this.loading;
    await this.stream?.stop();
    await this.persisting;
  }

  private async open(): Promise<FillStream | undefined> {
    const { options } = this;
    const { tradeWatch, logger } = options;
    const handlers: FillStreamHandlers = {
      logger,
      clock: options.clock,
      initialBackoffMs: options.initialBackoffMs,
      maxBackoffMs: options.maxBackoffMs,
      catchUpEveryMs: options.catchUpEveryMs,
      onFill: async (fill) => {
        await tradeWatch.ingest([fill]);
      },
      onListening: async () => {
        await tradeWatch.poll();
      },
      onStateChange: (state) => {
        this.persist(state);
        for (const listener of this.stateListeners) listener(state);
      },
    };
    if ('open' in options) return options.open(handlers);
    const { TradeStream } = await import('../broker/stream.ts');
    return new TradeStream({
      ...handlers,
      url: this.url,
      keyId: options.keyId,
      secretKey: options.secretKey,
      onOrderEnded: (ended) => {
        for (const listener of this.orderEndedListeners) listener(ended);
      },
      onOrderUpdate: (update) => {
        for (const listener of this.orderUpdateListeners) listener(update);
      },
    });
  }

  private persist(state: StreamState): void {
    const { store, logger } = this.options;
    this.persisting = this.persisting
      .then(() =>
        store.update((data) => {
          data.watch.stream = {
            status: state.status,
            since: state.since,
            ...(state.lastError ? { lastError: state.lastError } : {}),
            ...(state.refused ? { refused: true } : {}),
          };
        }),
      )
      .catch((error) => logger.warn(`could not record the trade stream's state: ${describeError(error)}`));
  }
}
