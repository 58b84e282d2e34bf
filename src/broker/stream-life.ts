// The life of a pushed feed of fills, whatever carries it (Alpaca's trade_updates, an exchange's
// watchMyTrades through ccxt): its status for status replies and health, the back-off between
// attempts, and the catch-up poll after each (re)connect. The carrier says what happened
// (attempting, listening, lost); this decides when to try again and when the owner reads the gap.
//
// A connection dropped right after each subscribe must not turn into a storm: the back-off is reset
// only by a connection that stayed up (`stableAfterMs`, 30 s), so it keeps growing while the
// connection flaps; and the catch-up (`onListening`) runs at most once per `catchUpEveryMs` (5 s). A
// catch-up held back by that limit is never dropped: it runs when the limit allows, connected or not
// (the poll reads over REST), so every subscribe is followed by a catch-up that starts after it.
import { systemClock, type Clock } from '../clock.ts';
import { silentLogger, type Logger } from '../log.ts';

export type StreamStatus = 'connecting' | 'connected' | 'reconnecting' | 'stopped';

/** What the stream is doing now: for status replies and the controller's health registry. */
export interface StreamState {
  status: StreamStatus;
  /** ms since epoch the current status began (for 'reconnecting': when the connection was lost) */
  since: number;
  /** ms since epoch of the last frame received, any kind */
  lastMessageAt?: number;
  /** why the last connection ended or failed, in words for an operator */
  lastError?: string;
  /** the broker refused the keys on the last attempt */
  refused: boolean;
  /** connection attempts since the last connection that stayed up (stableAfterMs): the back-off's exponent */
  attempts: number;
}

export interface StreamLifeOptions {
  /** how log lines name the stream ("trade stream") */
  name: string;
  /** after a (re)subscription: what happened while disconnected must be read by poll */
  onListening?: () => Promise<void> | void;
  /** on every change of status (not on every message) */
  onStateChange?: (state: StreamState) => void;
  /** an error in words without secrets */
  clean: (error: unknown) => string;
  logger?: Logger;
  clock?: Clock;
  /** back-off of the first reconnect (default 500 ms), doubled per failure up to maxBackoffMs (30 s) */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** how long (by the clock) a connection must stay up before the back-off starts over (default 30 s) */
  stableAfterMs?: number;
  /** the shortest time between two catch-ups (onListening), by the clock (default 5 s) */
  catchUpEveryMs?: number;
  /** injected so a test can fix the jitter; default Math.random */
  random?: () => number;
}

export class StreamLife {
  private current: StreamState;
  private stopped = true;
  private reconnectTimer?: NodeJS.Timeout;
  /** when the current connection subscribed (clock), while it is up */
  private connectedAt?: number;
  /** when the last catch-up began (clock), and the one held back by the limit */
  private lastCatchUpAt?: number;
  private catchUpTimer?: NodeJS.Timeout;
  private lastLoggedRefusal?: boolean;
  private readonly logger: Logger;
  private readonly clock: Clock;

  constructor(private readonly options: StreamLifeOptions) {
    this.logger = options.logger ?? silentLogger;
    this.clock = options.clock ?? systemClock;
    this.current = { status: 'stopped', since: this.clock.now(), refused: false, attempts: 0 };
  }

  /** A copy of the current state. */
  state(): StreamState {
    return { ...this.current };
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  /** false when already started */
  begin(): boolean {
    if (!this.stopped) return false;
    this.stopped = false;
    return true;
  }

  /** A connection attempt starts. */
  attempting(): void {
    const attempt = this.current.attempts + 1;
    if (this.current.status !== 'reconnecting') this.setState({ status: 'connecting', since: this.clock.now(), attempts: attempt });
    else this.current.attempts = attempt;
  }

  /** Any frame or message arrived. */
  heard(): void {
    this.current.lastMessageAt = this.clock.now();
  }

  /** Subscribed: connected, and the owner reads what it missed (`where` names the connection in the log). */
  listening(where: string): void {
    const wasDown = this.current.status === 'reconnecting' ? this.clock.now() - this.current.since : undefined;
    // attempts is not reset here: a connection dropped right after its subscribe is one more failure.
    this.connectedAt = this.clock.now();
    this.setState({ status: 'connected', since: this.connectedAt, refused: false, lastError: undefined });
    this.logger.info(`${this.options.name} connected (${where})${wasDown !== undefined ? ` after ${Math.round(wasDown / 1000)} s reconnecting` : ''}`);
    this.catchUp();
  }

  /** The connection ended or never came up: back off (exponential, with jitter), then `retry`. */
  lost(why: string, refused: boolean, retry: () => void): void {
    if (this.stopped) return;
    const firstFailure = this.current.status !== 'reconnecting';
    this.setState({
      status: 'reconnecting',
      since: firstFailure ? this.clock.now() : this.current.since,
      lastError: this.options.clean(why),
      refused,
    });
    // An operator needs the first failure of a streak, not one line per retry.
    if (firstFailure || refused !== (this.lastLoggedRefusal ?? false)) {
      (refused ? this.logger.error : this.logger.warn)(`${this.options.name}: ${this.options.clean(why)}; reconnecting with back-off`);
      this.lastLoggedRefusal = refused;
    }
    // Only a connection that stayed up starts the back-off over; a flapping one keeps it growing.
    if (this.connectedAt !== undefined && this.clock.now() - this.connectedAt >= (this.options.stableAfterMs ?? 30_000)) this.current.attempts = 0;
    this.connectedAt = undefined;
    const initial = this.options.initialBackoffMs ?? 500;
    const max = this.options.maxBackoffMs ?? 30_000;
    const base = Math.min(max, initial * 2 ** Math.min(20, Math.max(0, this.current.attempts - 1)));
    const jittered = base / 2 + (this.options.random ?? Math.random)() * (base / 2);
    this.reconnectTimer = setTimeout(retry, jittered);
  }

  /** Stops retrying and catching up; a deliberate stop ends the streak (the next start backs off from the shortest). */
  end(): void {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.catchUpTimer);
    this.catchUpTimer = undefined;
    this.connectedAt = undefined;
  }

  /** After end() and the connection closed: recorded as stopped. */
  ended(): void {
    this.setState({ status: 'stopped', since: this.clock.now(), attempts: 0 });
  }

  /**
   * Runs the owner's catch-up now, or, within catchUpEveryMs of the last one, once the limit allows
   * (a catch-up already waiting covers this subscribe too: it starts after it).
   */
  private catchUp(): void {
    if (this.catchUpTimer || !this.options.onListening) return;
    const every = this.options.catchUpEveryMs ?? 5000;
    const wait = this.lastCatchUpAt === undefined ? 0 : this.lastCatchUpAt + every - this.clock.now();
    const run = () => {
      this.catchUpTimer = undefined;
      if (this.stopped) return;
      this.lastCatchUpAt = this.clock.now();
      void Promise.resolve()
        .then(() => this.options.onListening?.())
        .catch((error) => this.logger.warn(`${this.options.name}: reconciling after connect failed: ${this.options.clean(error)}`));
    };
    if (wait <= 0) run();
    else {
      this.logger.debug(`${this.options.name}: the catch-up poll waits ${Math.ceil(wait)} ms (at most one every ${every} ms)`);
      this.catchUpTimer = setTimeout(run, wait);
    }
  }

  private setState(change: Partial<StreamState>): void {
    const before = this.current.status;
    this.current = { ...this.current, ...change };
    if (change.status !== undefined && (change.status !== before || change.since !== undefined)) this.options.onStateChange?.(this.state());
  }
}
