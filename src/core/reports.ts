// The reports operations return, in one place: fronts (Discord, CLI, demo console) import what they
// render from here, never from the adapters that produce the parts.
export type { AccountReport, Actor, GateStatus, LockReport, StatusReport, StopReport, StreamStatusReport, TradeSummary } from './operations.ts';
export type { EquityPoint, EquityStep, PnlPeriod, PnlReport, SessionReport } from './review.ts';
export type { ClosedTrade, DigestReport } from './digest.ts';
export type { HaltReport } from './breaker.ts';
export type { LossFigures } from '../watch/loss-watch.ts';
export type { FlattenReport, SymbolReport } from './flatten.ts';
export type { AuditEntry, AlertSeverity, BrokerLockState, SeenTrade, StoredAlert } from '../store/schema.ts';
export type { Duplicate, ProcessState, ProcessStatus, StartResult, StopDuplicatesResult, StopResult } from '../supervisor/types.ts';

import type { StartResult } from '../supervisor/types.ts';
import type { ResumeResult, StopReport } from './operations.ts';

/** The stop (with the session it ended), then the start. */
export type RestartReport = StartResult & { stopped: StopReport };
export type ResumeReport = ResumeResult;
export interface LogsReport {
  logs: string;
}
