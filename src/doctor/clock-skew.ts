// This machine's clock against the broker's or the exchange's (doctor, for Alpaca and for ccxt):
// fill times and the rolling hour depend on it.
import type { MarketClock } from '../broker/types.ts';
import { describeError } from '../errors.ts';
import type { DoctorCheck } from './report.ts';

type Add = (check: Omit<DoctorCheck, 'area'>) => void;

/** Above this, fill times and the rolling hour are off by enough to matter. */
export const CLOCK_SKEW_WARN_MS = 2000;

/**
 * Reads the other side's clock once and compares. `quiet`: failures another line already reports
 * (keys refused). `whose`: "the broker's", "kraken's".
 */
export async function clockCheck(read: () => Promise<MarketClock>, add: Add, quiet: (error: unknown) => boolean, whose = "the broker's"): Promise<void> {
  let theirClock: MarketClock;
  const asked = Date.now();
  try {
    theirClock = await read();
  } catch (error) {
    if (!quiet(error)) add({ name: 'clock', status: 'warn', detail: `could not read ${whose} clock: ${describeError(error)}`, fix: "try again; this machine's time is then unchecked" });
    return;
  }
  const answered = Date.now();
  const theirs = theirClock.timestamp ? Date.parse(theirClock.timestamp) : NaN;
  if (!Number.isFinite(theirs)) {
    add({ name: 'clock', status: 'warn', detail: `${whose} clock answer has no time in it`, fix: 'nothing to compare; make sure this machine keeps its time synchronised (NTP)' });
    return;
  }
  // The other side read its clock somewhere during the round trip: compare with the middle of it.
  const skew = Math.round(theirs - (asked + answered) / 2);
  const seconds = (Math.abs(skew) / 1000).toFixed(1);
  if (Math.abs(skew) > CLOCK_SKEW_WARN_MS) {
    add({
      name: 'clock',
      status: 'warn',
      detail: `this machine's clock is ${seconds} s ${skew > 0 ? 'behind' : 'ahead of'} ${whose}`,
      fix: 'turn time synchronisation on (`timedatectl set-ntp true`, or chrony): fill times and the rolling hour depend on it',
    });
  } else add({ name: 'clock', status: 'ok', detail: `within ${seconds} s of ${whose} (round trip ${answered - asked} ms)` });
}
