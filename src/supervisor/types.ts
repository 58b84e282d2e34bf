// What the rest of the controller knows about process supervision: plain data, no PM2 types.
export type ProcessState = 'online' | 'stopped' | 'stopping' | 'errored' | 'launching' | 'not_found';

export interface Duplicate {
  pid: number;
  command: string;
  /** ms since epoch, when known */
  startedAt?: number;
  /** 'pm2' = another PM2 entry for the name or script; 'os' = a process outside PM2 running the script */
  foundIn: 'pm2' | 'os';
  /** for PM2 duplicates: the entry's name and pm_id */
  pm2Name?: string;
  pmId?: number;
}

export interface ProcessStatus {
  name: string;
  state: ProcessState;
  pid?: number;
  /** ms since epoch when the current run started */
  startedAt?: number;
  uptimeMs?: number;
  restarts: number;
  cpuPercent?: number;
  memoryBytes?: number;
  lastExitCode?: number | null;
  script: string;
  outLogPath?: string;
  errLogPath?: string;
  duplicates: Duplicate[];
}

export interface StartResult {
  pid: number;
  status: ProcessStatus;
}

export interface StopResult {
  /** PID that was running before the stop, if any */
  pid?: number;
  wasRunning: boolean;
  /** true when the process ignored SIGINT and had to be killed after kill_timeout */
  forceKilled: boolean;
  durationMs: number;
  /** PIDs of a trader PM2 had started but no longer knew (its daemon died), ended all the same */
  endedOutsidePm2?: number[];
}

export interface StopDuplicatesResult {
  stopped: Array<{ pid: number; signal: 'SIGTERM' | 'SIGKILL' }>;
  /** PIDs asked for that the latest scan did not report: never touched */
  notInLatestScan: number[];
  failed: Array<{ pid: number; reason: string }>;
}

/** The supervisor, as the core sees it. Every method throws OperationError on refusal/failure. */
export interface Supervision {
  status(): Promise<ProcessStatus>;
  /** PID of the managed trader while PM2 runs it (one PM2 listing, no process-table scan) */
  traderPid(): Promise<number | undefined>;
  /** refuses (kind 'refused') when running, when a duplicate exists, or when `precheck` refuses */
  start(): Promise<StartResult>;
  stop(): Promise<StopResult>;
  restart(): Promise<StartResult & { stopped: StopResult }>;
  scanDuplicates(): Promise<Duplicate[]>;
  stopDuplicates(pids: number[]): Promise<StopDuplicatesResult>;
  /** last `lines` lines of the trader's stdout+stderr logs */
  logs(lines: number): Promise<string>;
  close(): Promise<void>;
}
