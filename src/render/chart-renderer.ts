// Charts for the long-running controller, drawn in a child process (chart-process.ts) that is
// started on the first chart and exits after a minute without one. Why not in the controller:
// measured (bench/chart.ts, idle.ts IDLE_WITH_CHARTS=1), loading Skia and chart.js and drawing
// charts grew the controller's RSS from ~130 MB to ~170 MB, and glibc kept that memory after the
// charts were gone, past the 150 MB target for an idle controller. A separate process gives all
// of it back when it exits; a warm one draws in tens of milliseconds.
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { ChartImage, EquityChartInput, TradeRateChartInput } from './chart.ts';
import type { ChartAnswer, ChartRequest } from './chart-process.ts';

// chart-process.ts through tsx from the sources, or chart-process.js beside the built controller
// (dist/controller/, where this code is then bundled), which needs no tsx.
const FROM_SOURCES = import.meta.filename.endsWith('.ts');
const PROCESS_SCRIPT = path.join(import.meta.dirname, FROM_SOURCES ? 'chart-process.ts' : 'chart-process.js');
/** The renderer exits after this long without a request. */
const IDLE_EXIT_MS = 60_000;
/** A chart that takes longer is given up (the message goes out without it). */
const REQUEST_TIMEOUT_MS = 15_000;

interface Pending {
  resolve: (image: ChartImage) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

let renderer: ChildProcess | undefined;
let idleTimer: NodeJS.Timeout | undefined;
let nextId = 1;
const pending = new Map<number, Pending>();

function start(): ChildProcess {
  // tsx by its resolved path: the child must load TypeScript whatever the current directory.
  const child = fork(PROCESS_SCRIPT, [], {
    execArgv: FROM_SOURCES ? ['--import', import.meta.resolve('tsx')] : [],
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    serialization: 'json',
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-500)));
  child.on('message', (answer: ChartAnswer) => {
    const request = pending.get(answer.id);
    if (!request) return;
    pending.delete(answer.id);
    clearTimeout(request.timer);
    if (answer.ok) request.resolve({ png: Buffer.from(answer.png, 'base64'), width: answer.width, height: answer.height });
    else request.reject(new Error(`chart not drawn: ${answer.error}`));
    settle();
  });
  child.on('exit', (code, signal) => {
    if (renderer === child) renderer = undefined;
    const why = new Error(`the chart renderer exited (${signal ?? code})${stderr.trim() ? `: ${stderr.trim().split('\n').at(-1)}` : ''}`);
    for (const [id, request] of pending) {
      clearTimeout(request.timer);
      pending.delete(id);
      request.reject(why);
    }
  });
  child.on('error', () => undefined); // reported through 'exit' and the pending requests
  // Neither the child nor its channel keeps the controller (or a test) alive.
  child.unref();
  child.channel?.unref();
  return child;
}

/** With nothing pending, the renderer is let go after IDLE_EXIT_MS. */
function settle(): void {
  clearTimeout(idleTimer);
  if (pending.size > 0) return;
  idleTimer = setTimeout(() => closeChartRenderer(), IDLE_EXIT_MS);
  idleTimer.unref();
}

function draw(request: Omit<ChartRequest, 'id'>): Promise<ChartImage> {
  clearTimeout(idleTimer);
  renderer ??= start();
  const child = renderer;
  const id = nextId++;
  return new Promise<ChartImage>((resolve, reject) => {
    const timer = setTimeout(() => {
      pending.delete(id);
      reject(new Error(`chart not drawn within ${REQUEST_TIMEOUT_MS} ms`));
      child.kill('SIGKILL'); // a stuck renderer is replaced on the next chart
    }, REQUEST_TIMEOUT_MS);
    timer.unref();
    pending.set(id, { resolve, reject, timer });
    child.send({ ...request, id } as ChartRequest, (error) => {
      if (!error) return;
      pending.delete(id);
      clearTimeout(timer);
      reject(new Error(`the chart renderer is unreachable: ${error.message}`));
    });
  });
}

export const drawEquityChart = (input: EquityChartInput): Promise<ChartImage> => draw({ kind: 'equity', input });
export const drawTradeRateChart = (input: TradeRateChartInput): Promise<ChartImage> => draw({ kind: 'trade-rate', input });

/** PID of the renderer while it runs (the bench reports its memory). */
export const chartRendererPid = (): number | undefined => renderer?.pid;

/** Lets the renderer go now (controller shutdown, idle): it exits when its channel closes. */
export function closeChartRenderer(): void {
  clearTimeout(idleTimer);
  const child = renderer;
  renderer = undefined;
  if (child?.connected) child.disconnect();
}
