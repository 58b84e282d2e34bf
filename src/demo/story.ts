// What the demo says about what is happening: a few lines at the start, and for the runaway
// scenario a narration of the incident as the real alerts arrive (printed right after each alert,
// so the story follows what the watchdog actually saw, in the order it saw it).
import type { StoredAlert } from '../store/schema.ts';

export type ScenarioName = 'runaway' | 'loss';
export const SCENARIOS: readonly ScenarioName[] = ['runaway', 'loss'];

export interface StoryFacts {
  /** the order gate is on: orders are refused before the broker */
  gate: boolean;
  /** what pushes the fills: Alpaca's trade stream, or the exchange through ccxt's watchMyTrades (the Kraken stand-in offers it) */
  stream: 'alpaca' | 'ccxt';
  limit: number;
  orderEverySeconds: number;
  pollSeconds: number;
  scanSeconds: number;
  notional: number;
  symbol: string;
}

export function normalIntro(facts: StoryFacts): string {
  return [
    `The trader places a $${facts.notional} ${facts.symbol} order every ${facts.orderEverySeconds} s. More than ${facts.limit} fills in an hour raises the`,
    `trade-rate alert (ON_RUNAWAY=alert here: alert only). For the whole incident: npx tradewarden demo --scenario runaway`,
  ].join('\n');
}

export function runawayIntro(facts: StoryFacts): string {
  return [
    'Scenario: runaway — the incident tradewarden exists for. A bot was "restarted" with kill-by-name + nohup; the kill',
    'missed, each restart added a copy, and the copies made 27 trades in 14 minutes. Here: the limit is',
    `${facts.limit} trades an hour and ON_RUNAWAY=stop: ${facts.stream === 'alpaca' ? "the broker's trade stream reports each fill as it happens" : "the exchange pushes each trade as it happens (through ccxt's watchMyTrades)"}, and the`,
    'breaker halts every copy — the PM2 trader and any copy outside PM2 — the moment the limit is crossed.',
    ...(facts.gate
      ? ['With the order gate on, both copies send their orders to tradewarden first: the broker should see no more than the limit.']
      : []),
  ].join('\n');
}

/** What the day's loss is measured against: Alpaca's previous close, or (an exchange keeps none) tradewarden's own record. */
function dayReference(stream: StoryFacts['stream']): string {
  return stream === 'alpaca' ? "the broker's own reference (its equity at the last close)" : 'the first equity tradewarden recorded since 00:00 UTC (an exchange keeps no close)';
}

export function lossIntro(facts: StoryFacts & { dailyLoss: string; heldSymbol: string }): string {
  return [
    `Scenario: loss — a bot that loses money without ever trading much: one $${facts.notional} order every ${facts.orderEverySeconds} s,`,
    `far under the limit of ${facts.limit} trades an hour, while the ${facts.heldSymbol} it holds keeps falling. No count catches that.`,
    `MAX_DAILY_LOSS=${facts.dailyLoss} and ON_LOSS=stop: every account read (every ${facts.pollSeconds} s, and after each fill) measures the day's`,
    `loss against ${dayReference(facts.stream)}; past the limit, the breaker halts the trader.`,
  ].join('\n');
}

/** Narration of the runaway scenario; each line is numbered in the order it is told. */
export class RunawayStory {
  private step = 0;
  private readonly told = new Set<string>();

  constructor(
    private readonly facts: StoryFacts,
    private readonly tell: (text: string) => void,
    /** whether the copy outside PM2 still runs, when the breaker trips */
    private readonly rogueAlive: () => boolean,
  ) {}

  traderStarted(pid: number): void {
    this.say(`The trader (under PM2, PID ${pid}) is in a loop: a $${this.facts.notional} order every ${this.facts.orderEverySeconds} s.`);
  }

  rogueStarted(pid: number, command: string): void {
    this.say(`Someone "restarts" it by hand while it still runs: ${command} → a second copy, PID ${pid}, trades outside PM2.`);
    this.tell(
      this.facts.gate
        ? '   Watch for: the order gate refusing the copy, then the trader past the limit, and the duplicate alert. /bot status shows it all at any time.'
        : '   Watch for: the duplicate alert, the trade-rate alert, the breaker. /bot status shows it all at any time.',
    );
  }

  alert(alert: StoredAlert): void {
    const topic = alert.kind === 'order_refused' ? `${alert.kind}:${String(alert.facts.reason)}` : alert.kind;
    if (this.told.has(topic)) return;
    const { limit, scanSeconds, pollSeconds } = this.facts;
    switch (alert.kind) {
      case 'duplicate_instance':
        this.say(
          `The duplicate scan (every ${scanSeconds} s) found the copy in the OS process table, not only in PM2. ` +
            'ON_DUPLICATE=alert: nothing is killed on sight (an operator can: /bot stop-duplicates); the breaker ends every copy if trading runs away.',
        );
        break;
      case 'trade_rate_exceeded':
        this.say(
          (this.facts.stream === 'alpaca'
            ? `The broker's trade stream pushed each fill as it was booked (the poll, every ${pollSeconds} s, only reconciles): `
            : `The exchange pushed each trade as it was booked (ccxt's watchMyTrades; the poll, fetchMyTrades every ${pollSeconds} s, only reconciles): `) +
            `more than ${limit} fills in the last hour → trade-rate alert.`,
        );
        break;
      case 'breaker_tripped':
        this.say(
          'ON_RUNAWAY=stop: the breaker scanned at once and ended every copy — the PM2 trader and the copy outside PM2 — ' +
            'and /bot start is refused until /bot resume.' +
            (this.rogueAlive()
              ? ' The copy outside PM2 SURVIVED — /bot stop-duplicates ends it, then /flatten closes the positions.'
              : ' No copy trades any more: /flatten closes the positions.'),
        );
        break;
      case 'order_refused':
        this.say(
          alert.facts.reason === 'not_managed_trader'
            ? `The order gate refused an order from PID ${String(alert.facts.pid)}: it is not the managed trader. The copy gets nothing through — not even before the duplicate scan.`
            : alert.facts.reason === 'trade_limit'
              ? `The order gate refused the trader's order that would exceed ${limit} trades in the hour: it never reached the broker.`
              : 'The order gate refused an order while the breaker is tripped.',
        );
        break;
      case 'flatten_result':
        this.say('Flatten stopped the trader, canceled open orders, closed every position and re-read the account to say so.');
        break;
      default:
        return;
    }
    this.told.add(topic);
  }

  private say(text: string): void {
    this.step += 1;
    this.tell(`${String(this.step).padStart(2)}. ${text}`);
  }
}
