// The trades an exchange pushes, through ccxt pro's watchMyTrades (BROKER=ccxt): the same life as
// Alpaca's trade stream (broker/stream-life.ts: status, back-off, a catch-up poll after each
// connect), over ccxt's own WebSocket client. ccxt does not reconnect by itself: a lost connection
// rejects the pending watchMyTrades, and the next call connects again; so this loop calls it
// again after each loss, backing off, and the catch-up poll reads what filled in between.
// "Connected" is when the exchange's WebSocket opens (ccxt's onConnected): the subscribe follows on
// it, and a trade booked between the open and the subscribe is in the snapshot the exchange sends
// (Kraken's snap_trades), else read by the next poll. Loaded only with BROKER=ccxt; ccxt itself
// is imported by broker/ccxt.ts alone.
import { describeError } from '../errors.ts';
import type { FillStream, FillStreamHandlers } from '../watch/trade-stream.ts';
import type { CcxtBroker } from './ccxt.ts';
import { StreamLife, type StreamState } from './stream-life.ts';
import type { Fill } from './types.ts';

/** Pushed trades older than this are the snapshot's history: the poll reads what counts from its cursor. */
const HISTORY_MS = 3600_000;

type PushSource = Pick<CcxtBroker, 'pushesTrades' | 'onPushConnected' | 'preparePush' | 'nextPushedFills' | 'refusedKeys' | 'closePush'>;

/** The exchange's pushed trades, or undefined (said once in the log) where ccxt offers none for it. */
export async function openCcxtStream(broker: Promise<PushSource & { ccxtVersion: string }>, exchange: string, handlers: FillStreamHandlers): Promise<FillStream | undefined> {
  const loaded = await broker;
  if (!loaded.pushesTrades) {
    handlers.logger.info(`exchange ${exchange}: ccxt ${loaded.ccxtVersion} offers no watchMyTrades for it — fills come from the trade poll alone (TRADE_POLL_SECONDS)`);
    return undefined;
  }
  return new CcxtTradeStream(loaded, exchange, handlers);
}

export class CcxtTradeStream implements FillStream {
  private readonly life: StreamLife;
  /** the loop, while started */
  private running?: Promise<void>;
  /** this attempt's WebSocket opened */
  private open = false;
  /** ends a back-off early (stop) */
  private wake?: () => void;
  /** the token request (REST) is under way: a stop does not wait for its answer */
  private preparing = false;
  /** fills handed on in order, one ingest after the other */
  private delivering: Promise<void> = Promise.resolve();

  constructor(
    private readonly broker: PushSource,
    private readonly exchange: string,
    private readonly handlers: FillStreamHandlers,
  ) {
    this.life = new StreamLife({ ...handlers, name: `${exchange} trade stream`, clean: (error) => describeError(error) });
    broker.onPushConnected((url) => {
      if (this.life.isStopped || this.open) return;
      this.open = true;
      this.life.listening(`ccxt ${exchange} watchMyTrades, ${url}`);
    });
  }

  state(): StreamState {
    return this.life.state();
  }

  start(): void {
    if (this.life.begin()) this.running = this.run();
  }

  /** Resolves when the loop has ended (after a stop that did not wait for a token's answer, later): nothing opens after. */
  get finished(): Promise<void> {
    return this.running ?? Promise.resolve();
  }

  /**
   * Closes the exchange's WebSockets and stops reconnecting; resolves when the loop has ended, or,
   * while it waits for the token, at once (the loop ends when the answer comes, opening nothing).
   */
  async stop(): Promise<void> {
    if (this.life.isStopped) return;
    this.life.end();
    this.wake?.();
    await this.broker.closePush().catch((error: unknown) => this.handlers.logger.warn(`${this.exchange} trade stream: closing: ${describeError(error)}`));
    if (!this.preparing) await this.running;
    await this.delivering;
    this.life.ended();
  }

  private async run(): Promise<void> {
    while (!this.life.isStopped) {
      this.life.attempting();
      this.open = false;
      try {
        this.preparing = true;
        await this.broker.preparePush().finally(() => (this.preparing = false));
        // Stopped meanwhile: a watch now would open a connection that nothing closes.
        if (this.life.isStopped) return;
        let next = this.watch();
        for (;;) {
          const fills = await next;
          if (this.life.isStopped) return;
          // At once: ccxt hands what arrives meanwhile only to a call already waiting.
          next = this.watch();
          this.life.heard();
          this.deliver(fills);
        }
      } catch (error) {
        if (this.life.isStopped) return;
        await new Promise<void>((resolve) => {
          this.wake = resolve;
          this.life.lost(describeError(error), this.broker.refusedKeys(error), resolve);
        });
        this.wake = undefined;
      }
    }
  }

  /** The next pushed trades; a rejection left unawaited at stop is not an unhandled one. */
  private watch(): Promise<Fill[]> {
    const next = this.broker.nextPushedFills();
    next.catch(() => undefined);
    return next;
  }

  private deliver(fills: Fill[]): void {
    const from = this.handlers.clock.now() - HISTORY_MS;
    for (const fill of fills.filter((f) => f.at >= from)) {
      this.delivering = this.delivering
        .then(() => this.handlers.onFill(fill))
        .catch((error: unknown) => this.handlers.logger.error(`${this.exchange} trade stream: recording a fill failed: ${describeError(error)}`));
    }
  }
}
