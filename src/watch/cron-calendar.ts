// When a node-cron pattern falls, in an IANA time zone, computed from any instant: DIGEST_CRON's
// calendar. node-cron parses the pattern (validateDetailed: names, ranges, steps, `?`, L, W, #,
// the @daily nicknames, an optional seconds field), so what DIGEST_CRON accepts is exactly node-cron
// syntax, with node-cron's rule that day of month AND day of week must both match.
//
// Why the times are computed here and not left to node-cron's own timer:
// - node-cron reads the wall clock; the digest's schedule must follow the injected clock, so a test
//   drives it with a ManualClock (a day in a millisecond) and a restart can ask "which due time did
//   I miss while I was down?", which node-cron cannot answer.
// - node-cron matches the zone's wall-clock seconds: in the hour a DST change repeats it fires twice,
//   in the hour it skips never. A digest is due once per due time. Here a local time the zone skips
//   (02:30 on the spring-forward night) falls as much later as the clock jumped (03:30), and one it
//   repeats falls once, the first time: RFC 5545's rule, Temporal's "compatible".
import { createRequire } from 'node:module';

// Loaded on first use: every CLI verb reads the configuration, and loading node-cron costs ~10 ms
// that only a configuration with DIGEST_CRON (and the controller's schedule) needs to pay.
let nodeCron: typeof import('node-cron') | undefined;
const cron = (): typeof import('node-cron') => (nodeCron ??= createRequire(import.meta.url)('node-cron') as typeof import('node-cron'));

const DAY_MS = 86_400_000;
/** Far enough for any valid pattern (29 February on a given weekday recurs within 28 years). */
const MAX_DAYS_SEARCHED = 366 * 29;

/** What is wrong with `pattern` as node-cron syntax, in words; undefined when node-cron takes it. */
export function cronProblem(pattern: string): string | undefined {
  const result = cron().validateDetailed(pattern);
  if (result.valid) return undefined;
  return result.errors.map((e) => e.message.replace('is a invalid', 'is not a valid')).join('; ');
}

/** What is wrong with `zone` as an IANA time zone; undefined when it is one this Node knows. */
export function timeZoneProblem(zone: string): string | undefined {
  // Intl also takes offsets ("+02:00") on newer Nodes: not a zone, and blind to DST.
  if (!/^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+)*$/.test(zone)) return 'not an IANA zone name';
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return undefined;
  } catch {
    return 'not a time zone this Node.js knows';
  }
}

/** A schedule as the data file records it (DIGEST_CRON and DIGEST_TZ): a changed one starts over. */
export const scheduleKey = (pattern: string, timeZone: string): string => `${pattern} ${timeZone}`;

/** The machine's own zone (TZ, /etc/localtime), as Node resolves it. */
export const machineTimeZone = (): string => Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';

type DayOfMonth = number | string;
type DayOfWeek = number | string;

interface Fields {
  seconds: number[];
  minutes: number[];
  hours: number[];
  daysOfMonth: DayOfMonth[];
  months: Set<number>;
  daysOfWeek: DayOfWeek[];
}

/** A validated pattern in a zone: its due times before and after any instant. */
export class CronCalendar {
  private readonly parts: Intl.DateTimeFormat;

  private constructor(
    readonly pattern: string,
    readonly timeZone: string,
    private readonly fields: Fields,
  ) {
    this.parts = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
  }

  /** Throws naming what is wrong (callers check with cronProblem and timeZoneProblem first). */
  static of(pattern: string, timeZone: string): CronCalendar {
    const problem = cronProblem(pattern) ?? timeZoneProblem(timeZone);
    if (problem) throw new Error(`cannot schedule "${pattern}" in ${timeZone}: ${problem}`);
    const f = cron().validateDetailed(pattern).fields!;
    const numbers = (values: ReadonlyArray<number | string>) => [...new Set(values.filter((v): v is number => typeof v === 'number'))].sort((a, b) => a - b);
    return new CronCalendar(pattern, timeZone, {
      seconds: numbers(f.second),
      minutes: numbers(f.minute),
      hours: numbers(f.hour),
      daysOfMonth: f.dayOfMonth,
      months: new Set(numbers(f.month)),
      daysOfWeek: f.dayOfWeek,
    });
  }

  /** The first due time strictly after `after` (ms since epoch, whole seconds). */
  next(after: number): number {
    // From the local day before: a time pushed forward out of a DST gap may land after midnight.
    let { year, month, day } = this.local(after - DAY_MS);
    for (let i = 0; i < MAX_DAYS_SEARCHED; i++) {
      if (this.dayMatches(year, month, day)) {
        const found = this.firstOnDay(year, month, day, after);
        if (found !== undefined) return found;
      }
      ({ year, month, day } = nextDay(year, month, day));
    }
    throw new Error(`"${this.pattern}" has no due time within ${Math.round(MAX_DAYS_SEARCHED / 366)} years`);
  }

  /**
   * The latest due time in (notBefore, atOrBefore], or undefined when there is none. A binary
   * search over next(): whatever lies between, it takes ~45 looks.
   */
  latest(atOrBefore: number, notBefore: number): number | undefined {
    if (this.next(notBefore) > atOrBefore) return undefined;
    let lo = notBefore;
    let hi = atOrBefore;
    // next(lo) ≤ atOrBefore < next(hi), so the answer is next(lo) once they touch.
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      if (this.next(mid) <= atOrBefore) lo = mid;
      else hi = mid;
    }
    return this.next(lo);
  }

  /** How many due times fall in (after, until]; counting stops at `cap`. */
  countBetween(after: number, until: number, cap = 1000): number {
    let n = 0;
    for (let t = this.next(after); t <= until && n < cap; t = this.next(t)) n++;
    return n;
  }

  private firstOnDay(year: number, month: number, day: number, after: number): number | undefined {
    const { hours, minutes, seconds } = this.fields;
    const midnight = Date.UTC(year, month - 1, day);
    // The offsets before the local day begins and after it ends, anywhere on Earth (UTC−12 … +14).
    const before = this.offsetAt(midnight - 15 * 3_600_000);
    const afterDay = this.offsetAt(midnight + DAY_MS + 13 * 3_600_000);
    if (before === afterDay) {
      // No change of offset this day: local time maps to instants in order; the first one after wins.
      for (const h of hours) {
        if (midnight + (h + 1) * 3_600_000 - before <= after) continue;
        for (const m of minutes) for (const s of seconds) {
          const at = midnight + (h * 3600 + m * 60 + s) * 1000 - before;
          if (at > after) return at;
        }
      }
      return undefined;
    }
    // A change this day (DST): find its instant, then map each local time by the rule above. Out of
    // order around the change (02:30 → 03:30 falls after 03:00), so the earliest after `after` wins.
    const change = this.changeBetween(midnight - 15 * 3_600_000, midnight + DAY_MS + 13 * 3_600_000, before);
    let best: number | undefined;
    for (const h of hours) for (const m of minutes) for (const s of seconds) {
      const wall = midnight + (h * 3600 + m * 60 + s) * 1000;
      const asBefore = wall - before;
      const asAfter = wall - afterDay;
      const validBefore = asBefore < change;
      const validAfter = asAfter >= change;
      // Repeated: the first reading; skipped: as far forward as the clock jumped (the earlier offset).
      const at = validBefore && validAfter ? Math.min(asBefore, asAfter) : validAfter ? asAfter : asBefore;
      if (at > after && (best === undefined || at < best)) best = at;
    }
    return best;
  }

  /** The first instant in (from, to] whose offset is not `offset` (a transition on a whole second). */
  private changeBetween(from: number, to: number, offset: number): number {
    let lo = from;
    let hi = to;
    while (hi - lo > 1000) {
      const mid = Math.floor((lo + hi) / 2000) * 1000;
      if (this.offsetAt(mid) === offset) lo = mid;
      else hi = mid;
    }
    return hi;
  }

  /** The zone's offset from UTC at `at`, in ms (local = UTC + offset). */
  private offsetAt(at: number): number {
    const whole = Math.floor(at / 1000) * 1000;
    const p = this.local(whole);
    return Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second) - whole;
  }

  private local(at: number): { year: number; month: number; day: number; hour: number; minute: number; second: number } {
    const out = { year: 0, month: 0, day: 0, hour: 0, minute: 0, second: 0 };
    for (const part of this.parts.formatToParts(at)) {
      if (part.type in out) out[part.type as keyof typeof out] = Number(part.value);
    }
    return out;
  }

  private dayMatches(year: number, month: number, day: number): boolean {
    if (!this.fields.months.has(month)) return false;
    const weekday = new Date(Date.UTC(year, month - 1, day)).getUTCDay();
    return this.fields.daysOfMonth.some((v) => dayOfMonthMatches(v, year, month, day)) && this.fields.daysOfWeek.some((v) => dayOfWeekMatches(v, year, month, day, weekday));
  }
}

// ---- node-cron's day tokens, as its matcher reads them ----

const lastDay = (year: number, month: number) => new Date(Date.UTC(year, month, 0)).getUTCDate();

/** The weekday nearest to `target` within the month (nW, LW). */
function nearestWeekday(year: number, month: number, target: number): number {
  const last = lastDay(year, month);
  if (target < 1 || target > last) return -1;
  const weekday = new Date(Date.UTC(year, month - 1, target)).getUTCDay();
  if (weekday === 6) return target === 1 ? target + 2 : target - 1;
  if (weekday === 0) return target === last ? target - 2 : target + 1;
  return target;
}

function dayOfMonthMatches(value: DayOfMonth, year: number, month: number, day: number): boolean {
  if (typeof value === 'number') return value === day;
  if (value === 'L') return day === lastDay(year, month);
  const weekdayNear = /^(\d{1,2}|L)W$/.exec(value);
  if (weekdayNear) return nearestWeekday(year, month, weekdayNear[1] === 'L' ? lastDay(year, month) : Number(weekdayNear[1])) === day;
  const fromLast = /^L-(\d{1,2})$/.exec(value);
  if (fromLast) return lastDay(year, month) - Number(fromLast[1]) === day;
  return false;
}

function dayOfWeekMatches(value: DayOfWeek, year: number, month: number, day: number, weekday: number): boolean {
  if (typeof value === 'number') return value % 7 === weekday;
  const nth = /^([0-7])#([1-5])$/.exec(value);
  if (nth) return Number(nth[1]) % 7 === weekday && Math.floor((day - 1) / 7) + 1 === Number(nth[2]);
  const last = /^([0-7])L$/i.exec(value);
  if (last) return Number(last[1]) % 7 === weekday && day + 7 > lastDay(year, month);
  return false;
}

function nextDay(year: number, month: number, day: number): { year: number; month: number; day: number } {
  const d = new Date(Date.UTC(year, month - 1, day + 1));
  return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate() };
}
