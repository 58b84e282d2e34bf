// The trade stream's consumer: fills pushed by the broker go into the same trade window as the
// poll's (TradeWatch.ingest), and every (re)connect runs the poll at once, so whatever filled while
// the stream was down is read and counted once. The stream's state is kept in the data file on each
// change, so `tradewarden status` (another process) shows it too.
import { TradeStream, tradeStreamUrl, type StreamState } from '../broker/stream.ts';
import type { Clock } from '../clock.ts';
import { describeError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { Store } from '../store/store.ts';
import type { TradeWatch } from './watchdog.ts';

export type { StreamState } from '../broker/stream.ts';

export interface TradeStreamWatchOptions {
  baseUrl: string;
  /** APCA_STREAM_URL, when set */
  streamUrl?: string;
  keyId: string;
  secretKey: string;
  tradeWatch: TradeWatch;
  store: Store;
  clock: Clock;
  logger: Logger;
  /** first reconnect back-off (default 500 ms); tests and the demo shorten it */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
}

export class TradeStreamWatch {
  private readonly stream: TradeStream;
  readonly url: string;
  /** Serializes the state writes so the data file ends with the latest state. */
  private persisting: Promise<void> = Promise.resolve();

  constructor(private readonly options: TradeStreamWatchOptions) {
    const { tradeWatch, logger } = options;
    this.url = tradeStreamUrl(options.baseUrl, options.streamUrl);
    this.stream = new TradeStream({
      url: this.url,
      keyId: options.keyId,
      secretKey: options.secretKey,
      logger,
      clock: options.clock,
      initialBackoffMs: options.initialBackoffMs,
      maxBackoffMs: options.maxBackoffMs,
      onFill: async (fill) => {
        await tradeWatch.ingest([fill]);
      },
      onListening: async () => {
        await tradeWatch.poll();
      },
      onStateChange: (state) => this.persist(state),
    });
  }

  /** connected / reconnecting since / last message at: for status and the health registry. */
  state(): StreamState {
    return this.stream.state();
  }

  start(): void {
    this.stream.start();
  }

  async stop(): Promise<void> {
    await this.stream.stop();
    await this.persisting;
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
