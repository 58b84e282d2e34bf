// `tradewarden doctor`: every piece a first deployment needs, checked against the real thing (Discord's
// API, the broker, PM2, this machine), each saying what to fix. It runs without a controller, and
// beside one; it changes nothing anywhere.
//
// Side by side: the four groups (Discord, broker, PM2 and the trader, controller and ports) start
// together, each request inside them has its own time-out, and each group a time-out of its own,
// so one unreachable service costs its own lines, not the others' (the whole command takes about
// as long as its slowest answer). What a group found before its time-out is kept.
//
// The configuration is read as the controller reads it (the same rules: src/config.ts). A wrong
// variable is a ✗ naming it; the other checks still run, without that variable, so one typo does
// not hide what else is wrong.
//
// No secret reaches the report: checks name variables, never values, and the whole report is
// redacted with every secret of the environment (valid or not) before it is returned.
import fs from 'node:fs';
import path from 'node:path';
import dotenv from 'dotenv';
import { ConfigError, SECRET_VARIABLES, parseConfig, type Config } from '../config.ts';
import { describeError } from '../errors.ts';
import { redactDeep } from '../log.ts';
import { octal } from './files.ts';
import { doctorReport, type Area, type DoctorCheck, type DoctorReport } from './report.ts';

export interface DoctorOptions {
  /** default process.env (left unchanged: .env is read into a copy) */
  env?: NodeJS.ProcessEnv;
  /** the .env to read (default: the configuration folder's, as the controller and the CLI read it); false: none */
  dotenvPath?: string | false;
  /** per request to a service (default 3000 ms); each group gets 1.5 s more */
  timeoutMs?: number;
}

type Add = (check: Omit<DoctorCheck, 'area'>) => void;

export async function runDoctor(options: DoctorOptions = {}): Promise<DoctorReport> {
  const started = Date.now();
  const timeoutMs = options.timeoutMs ?? 3000;
  const env: NodeJS.ProcessEnv = { ...(options.env ?? process.env) };
  // The .env the controller reads: in the configuration folder (TRADEWARDEN_CONFIG, else the working directory).
  const envFile = options.dotenvPath === false ? undefined : path.resolve(options.dotenvPath ?? path.join(env.TRADEWARDEN_CONFIG?.trim() || '.', '.env'));
  if (envFile) dotenv.config({ path: envFile, quiet: true, processEnv: env as Record<string, string> });
  const secrets = SECRET_VARIABLES.map((name) => env[name]?.trim()).filter((value): value is string => Boolean(value));

  const configuration: DoctorCheck[] = [];
  const addConfig: Add = (check) => configuration.push({ area: 'Configuration', ...check });
  checkEnvFile(envFile, addConfig);
  const config = checkVariables(env, addConfig);

  const groups = config
    ? await Promise.all([
        group('Discord', (add) => import('./discord.ts').then(({ discordChecks }) => discordChecks(config.discord, add, timeoutMs)), timeoutMs),
        group(
          'Broker',
          (add) =>
            config.ccxt
              ? import('./exchange.ts').then(({ exchangeChecks }) => exchangeChecks(config.ccxt!, config.dataDir, add, timeoutMs))
              : import('./broker.ts').then(({ brokerChecks }) => brokerChecks(config.broker, add, timeoutMs)),
          timeoutMs,
        ),
        group('PM2 and the trader', (add) => import('./pm2.ts').then(({ pm2Checks }) => pm2Checks(config.pm2Home, env, add, timeoutMs)), timeoutMs),
        group('Controller and ports', (add) => import('./host.ts').then(({ hostChecks }) => hostChecks(config, add, timeoutMs)), timeoutMs),
      ])
    : [];
  const checks = redactDeep([...configuration, ...groups.flat()], [...secrets, ...(config?.secrets ?? [])]);
  return doctorReport(checks, Date.now() - started);
}

/** Runs one group under its own time-out; a group that throws or overruns says so in its own lines. */
async function group(area: Area, work: (add: Add) => Promise<void>, timeoutMs: number): Promise<DoctorCheck[]> {
  const checks: DoctorCheck[] = [];
  let open = true;
  const add: Add = (check) => {
    if (open) checks.push({ area, ...check });
  };
  const limitMs = timeoutMs + 1500;
  let timer: NodeJS.Timeout | undefined;
  const overrun = new Promise<'overrun'>((resolve) => (timer = setTimeout(() => resolve('overrun'), limitMs)));
  // Settles either way, so a group that fails after its time-out is not an unhandled rejection.
  const done = work(add).then(
    () => ({ error: undefined }),
    (error: unknown) => ({ error }),
  );
  const outcome = await Promise.race([done, overrun]);
  open = false;
  clearTimeout(timer);
  if (outcome === 'overrun') {
    checks.push({ area, name: 'time-out', status: 'fail', detail: `these checks had not finished after ${(limitMs / 1000).toFixed(1)} s`, fix: 'the lines above say what answered; try again, and check the network to what did not' });
  } else if (outcome.error !== undefined) {
    checks.push({ area, name: 'doctor', status: 'fail', detail: `the check itself failed: ${describeError(outcome.error)}`, fix: 'a bug in tradewarden doctor: please report it with this line' });
  }
  return checks;
}

/** .env holds the token and the keys: readable by its owner only. No .env is fine. */
function checkEnvFile(envFile: string | undefined, add: Add): void {
  if (!envFile) return;
  let mode: number;
  try {
    mode = fs.statSync(envFile).mode & 0o777;
  } catch {
    add({ name: '.env', status: 'ok', detail: `none at ${envFile}: the variables come from the environment` });
    return;
  }
  if (mode & 0o077) {
    add({ name: '.env', status: 'fail', detail: `${envFile} is mode ${octal(mode)}: other users can read the secrets in it`, fix: `chmod 600 ${envFile}` });
  } else add({ name: '.env', status: 'ok', detail: `${envFile} (${octal(mode)})` });
}

/**
 * The variables by the controller's own rules. On problems: each is a ✗, and the configuration
 * without the variables named is used for the other checks (a missing id the token needs then
 * leaves those Discord checks out rather than everything).
 */
function checkVariables(env: NodeJS.ProcessEnv, add: Add): Config | undefined {
  try {
    const config = parseConfig(env);
    add({ name: 'variables', status: 'ok', detail: 'every variable is valid (the controller would start with them)' });
    return config;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    for (const problem of error.problems) add({ name: 'variable', status: 'fail', detail: problem, fix: 'see .env.example for what it takes (README "Configuration")' });
    const without = { ...env };
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        return parseConfig(without, { discordIdsRequired: false });
      } catch (again) {
        if (!(again instanceof ConfigError)) throw again;
        const named = again.problems.map((p) => /^([A-Z][A-Z0-9_]+)\b/.exec(p)?.[1]).filter((name): name is string => Boolean(name));
        // A lone key of the pair is a problem of the pair: drop both.
        if (named.some((name) => name.startsWith('APCA_API_') && name !== 'APCA_API_BASE_URL')) named.push('APCA_API_KEY_ID', 'APCA_API_SECRET_KEY');
        if (!named.some((name) => without[name] !== undefined)) break;
        for (const name of named) delete without[name];
      }
    }
    add({ name: 'other checks', status: 'fail', detail: 'not run: the configuration cannot be read even without the variables above', fix: 'fix the variables above and run tradewarden doctor again' });
    return undefined;
  }
}
