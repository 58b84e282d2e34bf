// The broker as the controller sees it: our own types, parsed from Alpaca's JSON at the edge.
export interface Account {
  accountNumber?: string;
  status: string;
  currency: string;
  equity: number;
  lastEquity: number;
  cash: number;
  buyingPower: number;
  /** equity - last_equity */
  dayPnl: number;
  /** the account's own "new orders are blocked" switch is on (Alpaca: trade_suspended_by_user) */
  tradeSuspendedByUser?: boolean;
  /** the broker itself blocks trading, or the whole account (Alpaca: trading_blocked, account_blocked) */
  tradingBlocked?: boolean;
  accountBlocked?: boolean;
}

export interface Position {
  symbol: string;
  qty: number; // signed: negative for short
  side: 'long' | 'short';
  marketValue: number;
  avgEntryPrice: number;
  unrealizedPnl: number;
  assetClass?: string;
}

export interface Order {
  id: string;
  clientOrderId?: string;
  symbol: string;
  side: 'buy' | 'sell';
  qty?: number;
  notional?: number;
  type: string;
  timeInForce: string;
  status: string;
  filledQty: number;
  submittedAt?: string;
  limitPrice?: number;
  stopPrice?: number;
}

/**
 * One trade_updates event about an order, whatever the event (new, fill, partial_fill, canceled,
 * replaced, …): the order as it stands after it. The order gate's model of the trader's book
 * (gateway/trader-book.ts) is kept current from these.
 */
export interface OrderUpdate {
  event: string;
  order: {
    id: string;
    clientOrderId?: string;
    symbol: string;
    side: string;
    type?: string;
    /** the order's status after the event; absent when the broker did not say */
    status?: string;
    qty?: number;
    notional?: number;
    filledQty: number;
    limitPrice?: number;
    stopPrice?: number;
  };
  /** a fill's: the position in the symbol after it, signed (Alpaca's position_qty) */
  positionQty?: number;
  /** a fill's price and quantity */
  price?: number;
  qty?: number;
}

export interface Fill {
  /** activity id (unique per fill) */
  id: string;
  orderId: string;
  symbol: string;
  side: string;
  qty: number;
  price: number;
  /** transaction time, ms since epoch */
  at: number;
  /** 'fill' or 'partial_fill' */
  type: string;
  /**
   * The order's filled quantity after this fill, when the broker says it. The stream and the poll
   * name one execution differently (execution id vs activity id), so a trade's quantity is taken
   * from this rather than summed when both report the same fill.
   */
  cumQty?: number;
}

export interface MarketClock {
  /** the broker's own time when it answered (ISO 8601) */
  timestamp?: string;
  isOpen: boolean;
  nextOpen?: string;
  nextClose?: string;
}

/** One entry of DELETE /v2/positions' 207 multi-status answer. */
export interface CloseResult {
  symbol: string;
  /** HTTP status of this symbol's close request */
  status: number;
  order?: Order;
  /** the broker's reason when it failed */
  error?: string;
  /** a holding too small for the market to take (under its minimum order): left, and not a failure */
  dust?: string;
}

/**
 * The account's equity over a period (GET /v2/account/portfolio/history), one point per timeframe
 * step, oldest first. Points the broker sent without an equity (null) are left out.
 */
export interface PortfolioHistory {
  /** the broker's own resolution label, e.g. "1D", "15Min" */
  timeframe: string;
  /** equity at the start of the period: what profit/loss is measured against */
  baseValue: number;
  points: Array<{ at: number; equity: number; profitLoss: number; profitLossPct: number }>;
  /** a broker that keeps no history (an exchange): the curve is tradewarden's own record, kept since `since` (absent: nothing recorded yet) */
  recorded?: { since?: number };
}

export type HistoryPeriod = '1D' | '1W' | '1M' | '1A';
export type HistoryTimeframe = '1Min' | '5Min' | '15Min' | '1H' | '1D';

export interface Broker {
  account(): Promise<Account>;
  clock(): Promise<MarketClock>;
  positions(): Promise<Position[]>;
  openOrders(): Promise<Order[]>;
  /** Fills with transaction time after `afterIso` (all pages), oldest first. */
  fills(afterIso?: string): Promise<Fill[]>;
  cancelAllOrders(): Promise<Array<{ id: string; status: number }>>;
  closeAllPositions(): Promise<CloseResult[]>;
  portfolioHistory(period: HistoryPeriod, timeframe: HistoryTimeframe): Promise<PortfolioHistory>;
  /**
   * The account's own switch that blocks every new order, closes included (Alpaca: the account
   * configuration `suspend_trade`); cancels still work. True when it is on.
   */
  tradingSuspended(): Promise<boolean>;
  /** Turns that switch on or off; resolves once the broker's answer shows the asked value. */
  setTradingSuspended(suspended: boolean): Promise<void>;
}
