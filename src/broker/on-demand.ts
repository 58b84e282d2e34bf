// The broker, loaded on its first call: the Alpaca client (and axios under it) costs a tenth of a
// second to import, ccxt (BROKER=ccxt) three tenths and ~80 MB, and a `tradewarden status` never
// calls the broker (status reads the figures the watch recorded). The controller calls it within
// seconds anyway. Each client is imported only here, and only the configured one.
import type { Clock } from '../clock.ts';
import type { CcxtConfig } from '../config.ts';
import type { Logger } from '../log.ts';
import type { Account, Broker, CloseResult, Fill, HistoryPeriod, HistoryTimeframe, MarketClock, Order, PortfolioHistory, Position } from './types.ts';

export interface BrokerSettings {
  baseUrl: string;
  keyId: string;
  secretKey: string;
  logger: Logger;
}

export interface CcxtSettings {
  config: CcxtConfig;
  dataDir: string;
  logger: Logger;
  clock: Clock;
}

export class OnDemandBroker implements Broker {
  private client?: Promise<Broker>;

  private constructor(private readonly load: () => Promise<Broker>) {}

  static alpaca(settings: BrokerSettings): OnDemandBroker {
    return new OnDemandBroker(() => import('./alpaca.ts').then(({ AlpacaBroker }) => new AlpacaBroker(settings)));
  }

  static ccxt(settings: CcxtSettings): OnDemandBroker {
    // ccxt pro's class where there is one: it is the REST class plus watchMyTrades (as fast to load).
    return new OnDemandBroker(() => import('./ccxt.ts').then(({ CcxtBroker }) => CcxtBroker.open({ ...settings, push: true })));
  }

  /** The client itself, loaded (the ccxt trade stream needs the exchange object). */
  loaded(): Promise<Broker> {
    return this.broker;
  }

  private get broker(): Promise<Broker> {
    this.client ??= this.load();
    return this.client;
  }

  async account(): Promise<Account> {
    return (await this.broker).account();
  }
  async clock(): Promise<MarketClock> {
    return (await this.broker).clock();
  }
  async positions(): Promise<Position[]> {
    return (await this.broker).positions();
  }
  async openOrders(): Promise<Order[]> {
    return (await this.broker).openOrders();
  }
  async fills(afterIso?: string): Promise<Fill[]> {
    return (await this.broker).fills(afterIso);
  }
  async cancelAllOrders(): Promise<Array<{ id: string; status: number }>> {
    return (await this.broker).cancelAllOrders();
  }
  async closeAllPositions(): Promise<CloseResult[]> {
    return (await this.broker).closeAllPositions();
  }
  async portfolioHistory(period: HistoryPeriod, timeframe: HistoryTimeframe): Promise<PortfolioHistory> {
    return (await this.broker).portfolioHistory(period, timeframe);
  }
  async tradingSuspended(): Promise<boolean> {
    return (await this.broker).tradingSuspended();
  }
  async setTradingSuspended(suspended: boolean): Promise<void> {
    return (await this.broker).setTradingSuspended(suspended);
  }
}
