// `npm run demo [-- --scenario runaway|loss] [--gate] [--broker alpaca|ccxt] [--exit-after SECONDS] [--home DIR]`: see demo.ts.
import path from 'node:path';
import { parseArgs } from 'node:util';
import { EXIT, runDemo } from './demo.ts';
import { configFolder } from '../config-folder.ts';
import { DEMO_DIR_VARIABLE } from './processes.ts';
import { SCENARIOS, type ScenarioName } from './story.ts';

const USAGE = `Usage: npx tradewarden demo [options]   (in a clone: npm run demo -- [options])

The whole of tradewarden on this machine, with no accounts: a local paper broker, a demo trader
under the demo's own PM2, and the controller, with this terminal as the chat (type /help).

Options:
  --scenario runaway   re-enact the incident: a looping trader plus a copy started outside PM2;
                       watch the duplicate alert, the trade-rate alert and the breaker, then /flatten
  --scenario loss      a bot that loses under the trade limit: the market falls, the loss limit
                       (MAX_DAILY_LOSS=0.5%, ON_LOSS=stop) alerts and halts it; the loss in numbers at the end
  --gate               run the order gate (GATEWAY_ADDR): the trader (and the runaway's copy) trade
                       through tradewarden, which refuses orders over the limit and from the copy
  --broker ccxt        an exchange instead of Alpaca: a local stand-in of Kraken's API, which
                       tradewarden reads through ccxt (BROKER=ccxt) and the trader trades on with a
                       key of its own (default: alpaca, the local paper broker; not with --gate)
  --exit-after SECONDS end by itself this long after it is up (CI)
  --home DIR           the demo's folder (PM2_HOME, DATA_DIR, trader copy); default .demo in the
                       configuration folder (the working directory), or $${DEMO_DIR_VARIABLE}
  -h, --help           this text

Environment: DEMO_ORDER_EVERY_SECONDS (seconds between the trader's orders; default 90, runaway 3),
NO_COLOR (no colours), DISCORD_TOKEN and the Discord ids (in .env too) to serve Discord as well.`;

function usage(message: string): never {
  process.stderr.write(`${message}\n\n${USAGE}\n`);
  process.exit(EXIT.usage);
}

function positiveSeconds(value: string | undefined, name: string): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0 || n > 86_400) usage(`${name} is ${JSON.stringify(value)}: expected seconds, more than 0`);
  return n;
}

let values;
try {
  ({ values } = parseArgs({
    options: {
      scenario: { type: 'string' },
      'exit-after': { type: 'string' },
      home: { type: 'string' },
      gate: { type: 'boolean', default: false },
      broker: { type: 'string', default: 'alpaca' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  }));
} catch (error) {
  usage(error instanceof Error ? error.message : String(error));
}
if (values.help) {
  process.stdout.write(USAGE + '\n');
  process.exit(EXIT.ok);
}
if (values.scenario !== undefined && !(SCENARIOS as readonly string[]).includes(values.scenario)) {
  usage(`--scenario ${values.scenario}: the scenarios are ${SCENARIOS.join(', ')}`);
}

if (values.broker !== 'alpaca' && values.broker !== 'ccxt') usage(`--broker ${values.broker}: expected alpaca or ccxt`);
if (values.broker === 'ccxt' && values.gate) usage("--gate with --broker ccxt: the order gate is Alpaca's alone (an exchange checks each request's signature against its own host)");

const code = await runDemo({
  // Never inside the package (installed, it is node_modules/tradewarden): the configuration folder's.
  home: path.resolve(values.home ?? (process.env[DEMO_DIR_VARIABLE]?.trim() || path.join(configFolder(), '.demo'))),
  scenario: values.scenario as ScenarioName | undefined,
  exitAfterSeconds: positiveSeconds(values['exit-after'], '--exit-after'),
  gate: values.gate,
  broker: values.broker,
  orderEverySeconds: positiveSeconds(process.env.DEMO_ORDER_EVERY_SECONDS, 'DEMO_ORDER_EVERY_SECONDS'),
});
// PM2's client and discord.js can leave handles open; everything the demo started is gone: leave.
process.stdout.write('', () => process.exit(code));
