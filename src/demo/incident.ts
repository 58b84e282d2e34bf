// The incident, in numbers: what a runaway made and how fast it was contained, beside the incident
// behind tradewarden (27 trades in 14 minutes, 11% of the account). Pure: built from the data file
// and the broker's fills, so the demo and the bench print the same summary.
import type { StoreData } from '../store/schema.ts';

export const THE_INCIDENT = { trades: 27, minutes: 14 };

export interface IncidentSummary {
  /** distinct orders filled at the broker, by any copy, during the run */
  trades: number;
  /** first to last fill, ms */
  tradingMs: number;
  /** the fill that crossed MAX_TRADES_PER_HOUR → the trade-rate alert, ms */
  crossingToAlertMs?: number;
  /** the crossing fill → the breaker's halt done (every copy ended), ms */
  crossingToHaltMs?: number;
  /** what the breaker ended, PID by PID */
  ended: Array<{ pid: number; how: string }>;
  /** copies still running after the halt */
  survivors: number;
  /** fills after the halt: orders already in flight */
  afterHalt: number;
}

/** `fills`: the broker's FILL activities (order id and transaction time are enough). */
export function summarizeIncident(data: StoreData, fills: ReadonlyArray<{ orderId: string; at: number }>, limit: number): IncidentSummary {
  const firstFillOf = new Map<string, number>();
  for (const f of fills) firstFillOf.set(f.orderId, Math.min(f.at, firstFillOf.get(f.orderId) ?? Infinity));
  const trades = [...firstFillOf.values()].sort((a, b) => a - b);
  const crossing = trades[limit];
  const alert = data.alerts.find((a) => a.kind === 'trade_rate_exceeded');
  const halt = data.alerts.find((a) => a.kind === 'breaker_tripped');
  const facts = (halt?.facts ?? {}) as { ended?: Array<{ pid: number; how: string }>; survivors?: unknown[] };
  return {
    trades: trades.length,
    tradingMs: trades.length ? trades[trades.length - 1]! - trades[0]! : 0,
    crossingToAlertMs: crossing !== undefined && alert ? alert.createdAt - crossing : undefined,
    crossingToHaltMs: crossing !== undefined && halt ? halt.createdAt - crossing : undefined,
    ended: (facts.ended ?? []).map((e) => ({ pid: e.pid, how: e.how })),
    survivors: facts.survivors?.length ?? 0,
    afterHalt: halt ? trades.filter((t) => t > halt.createdAt).length : 0,
  };
}

export function incidentText(summary: IncidentSummary): string {
  const ms = (n?: number) => (n === undefined ? 'never' : `${Math.round(n)} ms`);
  const { trades, minutes } = THE_INCIDENT;
  return [
    'The incident, in numbers (this run | the incident behind tradewarden):',
    `  trades made              ${`${summary.trades} in ${(summary.tradingMs / 1000).toFixed(1)} s`.padEnd(24)} | ${trades} in ${minutes} minutes, nobody alerted`,
    `  crossing fill → alert    ${ms(summary.crossingToAlertMs).padEnd(24)} | —`,
    `  crossing fill → halt     ${ms(summary.crossingToHaltMs).padEnd(24)} | — (stopped by hand, copies missed)`,
    `  copies ended             ${String(summary.ended.length).padEnd(24)} | 0`,
    ...summary.ended.map((e) => `    PID ${e.pid}: ${e.how}`),
    ...(summary.survivors ? [`  STILL RUNNING after the halt: ${summary.survivors}`] : []),
    ...(summary.afterHalt ? [`  fills after the halt (orders already in flight): ${summary.afterHalt}`] : []),
  ].join('\n');
}
