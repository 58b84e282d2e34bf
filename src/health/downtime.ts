// Downtime is accounted for (invariant 10): the controller keeps a heartbeat and a clean-exit mark
// in the data file; a start that finds the last run ended without the mark raises
// `controller_restarted`, saying how long nothing watched and what happened meanwhile.
import type { AlertInput } from '../alerts/outbox.ts';
import type { Clock } from '../clock.ts';
import type { Store } from '../store/store.ts';
import type { SeenTrade, StoreData } from '../store/schema.ts';
import type { Duplicate, ProcessStatus } from '../supervisor/types.ts';
import { tradesInLastHour } from '../watch/trade-window.ts';

export interface Downtime {
  /** last sign of life of the controller that died (its last heartbeat), ms since epoch */
  from: number;
  /** this start, ms since epoch */
  to: number;
  previousPid: number;
}

/** The controller's life record in the store: begin at start, heartbeat on a cadence, end on a clean stop. */
export class ControllerLife {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  /** Records this start; returns the downtime when the previous controller did not exit cleanly. */
  begin(): Promise<Downtime | undefined> {
    const now = this.clock.now();
    return this.store.update((data) => {
      const previous = data.controller;
      const unclean = previous !== undefined && previous.cleanExitAt === undefined;
      // A restart that itself died before its report was saved: keep the first gap's start. (Its
      // report may be saved yet unmarked: the alert's key says so, read in this same update.)
      const carried = previous?.unreportedDownSince;
      const carriedOver = carried !== undefined && !data.alerts.some((a) => a.key === downtimeKey(carried));
      const downSince = unclean ? (carriedOver ? Math.min(carried, previous.heartbeatAt) : previous.heartbeatAt) : undefined;
      data.controller = { pid: process.pid, startedAt: now, heartbeatAt: now, ...(downSince !== undefined ? { unreportedDownSince: downSince } : {}) };
      return unclean ? { from: downSince!, to: now, previousPid: previous.pid } : undefined;
    });
  }

  heartbeat(): Promise<void> {
    const now = this.clock.now();
    return this.store.update((data) => {
      if (data.controller?.pid === process.pid) data.controller.heartbeatAt = now;
    });
  }

  /** The downtime alert is in the outbox: a later crash starts a new gap. */
  reported(): Promise<void> {
    return this.store.update((data) => {
      if (data.controller) delete data.controller.unreportedDownSince;
    });
  }

  end(): Promise<void> {
    const now = this.clock.now();
    return this.store.update((data) => {
      if (data.controller?.pid !== process.pid) return;
      data.controller.heartbeatAt = now;
      data.controller.cleanExitAt = now;
    });
  }
}

const downtimeKey = (from: number) => `controller_restarted:${from}`;

export interface DowntimeFindings {
  downtime: Downtime;
  /** the trades the broker reported inside the gap, or why they could not be read */
  fillsInGap: SeenTrade[] | { error: string } | { noBroker: true };
  tradesLastHour: number;
  limit: number;
  status: ProcessStatus | { error: string };
  desired?: StoreData['desired'];
  breakerTripped: boolean;
}

/** The `controller_restarted` alert for what the restarted controller found. */
export function downtimeAlert(findings: DowntimeFindings, processName: string): AlertInput {
  const { downtime, fillsInGap, status, desired } = findings;
  const iso = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');
  const lines = [`Nothing watched ${processName} from ${iso(downtime.from)} (last heartbeat of PID ${downtime.previousPid}) to ${iso(downtime.to)}.`];
  let worrying = false;

  let fills: number | null = null;
  if ('noBroker' in fillsInGap) lines.push('Fills: not watched (no broker configured).');
  else if ('error' in fillsInGap) {
    worrying = true;
    lines.push(`Fills in the gap: unknown, the broker did not answer (${fillsInGap.error}).`);
  } else {
    fills = fillsInGap.length;
    const over = findings.tradesLastHour > findings.limit;
    worrying ||= over;
    lines.push(
      `Fills in the gap: ${fills}${fills ? ` (${fillsInGap.slice(-5).map((t) => `${t.side} ${t.qty} ${t.symbol}`).join(', ')}${fills > 5 ? ', …' : ''})` : ''}; ` +
        `${findings.tradesLastHour} in the last hour (limit ${findings.limit})${over ? ' — OVER THE LIMIT' : ''}.`,
    );
  }

  let duplicates: Duplicate[] | null = null;
  let traderLine: string;
  const wanted = findings.breakerTripped ? 'stopped' : desired?.state ?? 'not set';
  const wantedText = findings.breakerTripped ? 'stopped (breaker tripped)' : wanted;
  if ('error' in status) {
    worrying = true;
    traderLine = `Trader: unknown, PM2 did not answer (${status.error}); wanted ${wantedText}.`;
  } else {
    duplicates = status.duplicates;
    const up = status.state === 'online' || status.state === 'launching';
    const mismatch = (wanted === 'running' && !up) || (wanted === 'stopped' && up);
    worrying ||= mismatch || duplicates.length > 0;
    traderLine = `Trader: ${status.state.replace('_', ' ')}${status.pid ? ` (PID ${status.pid})` : ''}, wanted ${wantedText}${mismatch ? ' — NOT AS WANTED' : ''}.`;
    lines.push(duplicates.length ? `Duplicates: ${duplicates.map((d) => `PID ${d.pid} (${d.foundIn === 'pm2' ? 'PM2' : 'outside PM2'})`).join(', ')}.` : 'Duplicates: none.');
  }
  lines.push(traderLine);

  return {
    kind: 'controller_restarted',
    severity: worrying ? 'critical' : 'warning',
    key: downtimeKey(downtime.from),
    title: 'Controller restarted after a crash',
    body: lines.join('\n'),
    facts: {
      downFrom: new Date(downtime.from).toISOString(),
      downTo: new Date(downtime.to).toISOString(),
      downSeconds: Math.round((downtime.to - downtime.from) / 1000),
      previousPid: downtime.previousPid,
      fillsInGap: fills,
      tradesLastHour: findings.tradesLastHour,
      duplicates: duplicates?.map((d) => d.pid) ?? null,
      traderState: 'error' in status ? null : status.state,
      wanted,
    },
  };
}

/** Gathers what the first poll and scan after a restart found and raises `controller_restarted`. */
export async function reportDowntime(options: {
  downtime: Downtime;
  store: Store;
  clock: Clock;
  hasBroker: boolean;
  /** why the first fill poll failed, if it did */
  pollError?: string;
  status: ProcessStatus | { error: string };
  limit: number;
  processName: string;
  raise: (alert: AlertInput) => Promise<unknown>;
}): Promise<void> {
  const { downtime } = options;
  const data = await options.store.read();
  const now = options.clock.now();
  const fillsInGap: DowntimeFindings['fillsInGap'] = !options.hasBroker
    ? { noBroker: true }
    : options.pollError !== undefined
      ? { error: options.pollError }
      : options.store.trades(downtime.from, downtime.to);
  await options.raise(
    downtimeAlert(
      {
        downtime,
        fillsInGap,
        tradesLastHour: tradesInLastHour(data.trades.seen, now).length,
        limit: options.limit,
        status: options.status,
        desired: data.desired,
        breakerTripped: data.breaker.tripped,
      },
      options.processName,
    ),
  );
}
