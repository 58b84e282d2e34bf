// What `tradewarden doctor` returns and how a terminal shows it: one line per check, ✓ ⚠ or ✗, and
// for ⚠ and ✗ the fix on the line below. ✗ is what stops the first start from working (the exit
// code is 1 then); ⚠ is what works but deserves a look, or what the first start does by itself.
// No value of a secret ever reaches a check: each names its variable instead (run.ts also redacts
// the whole report before it leaves, as a second guard).

export type CheckStatus = 'ok' | 'warn' | 'fail';

/** The sections, in the order a newcomer sets things up (the README's order). */
export const AREAS = ['Configuration', 'Discord', 'Broker', 'PM2 and the trader', 'Controller and ports'] as const;
export type Area = (typeof AREAS)[number];

export interface DoctorCheck {
  area: Area;
  /** what was checked, a few words: "token", "alert channel", "interpreter" */
  name: string;
  status: CheckStatus;
  /** what was found, one line */
  detail: string;
  /** for ⚠ and ✗: what to do, naming the variable or the place to change */
  fix?: string;
}

export interface DoctorReport {
  /** no check is ✗ */
  ok: boolean;
  checks: DoctorCheck[];
  counts: Record<CheckStatus, number>;
  tookMs: number;
}

const SYMBOL: Record<CheckStatus, string> = { ok: '✓', warn: '⚠', fail: '✗' };

/** Within an area, checks run side by side and finish in any order; they are shown in this one. */
const NAME_ORDER = [
  '.env', 'variables', 'variable', 'other checks',
  'Discord API', 'token', 'server', 'alert channel', 'alert role', 'operators', 'slash commands',
  'exchange', 'keys', 'account', 'markets', 'clock', 'trade stream',
  'PM2_HOME', 'PM2 daemon', 'ecosystem', 'script', 'working folder', 'interpreter', 'copies',
  'controller', 'GATEWAY_ADDR', 'METRICS_ADDR', 'DATA_DIR', 'free space', 'HEALTHCHECK_URL',
];
const rank = (check: DoctorCheck) => {
  const at = NAME_ORDER.indexOf(check.name);
  return at === -1 ? NAME_ORDER.length : at;
};

export function doctorReport(checks: DoctorCheck[], tookMs: number): DoctorReport {
  const ordered = AREAS.flatMap((area) => checks.filter((check) => check.area === area).sort((a, b) => rank(a) - rank(b)));
  const counts = { ok: 0, warn: 0, fail: 0 };
  for (const check of ordered) counts[check.status] += 1;
  return { ok: counts.fail === 0, checks: ordered, counts, tookMs };
}

export function doctorText(report: DoctorReport): string {
  const lines: string[] = [];
  for (const area of AREAS) {
    const checks = report.checks.filter((check) => check.area === area);
    if (!checks.length) continue;
    if (lines.length) lines.push('');
    lines.push(area);
    for (const check of checks) {
      lines.push(`  ${SYMBOL[check.status]} ${check.name}: ${check.detail}`);
      if (check.status !== 'ok' && check.fix) lines.push(`      → ${check.fix}`);
    }
  }
  const { ok, warn, fail } = report.counts;
  const verdict = fail
    ? `${fail} to fix before the first start (✗ above)`
    : warn
      ? 'ready: nothing stops a start (look at the ⚠ when you can)'
      : 'ready';
  const tally = [`${ok} ✓`, ...(warn ? [`${warn} ⚠`] : []), ...(fail ? [`${fail} ✗`] : [])].join(', ');
  lines.push('', `${tally} — ${verdict} (${(report.tookMs / 1000).toFixed(1)} s)`);
  return lines.join('\n');
}
