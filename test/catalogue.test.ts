// The operation catalogue and what the fronts derive from it, without PM2: the slash definitions,
// the console's commands, the CLI's strict command line and its generated help.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OPERATIONS, checkValue, isValueOption, operationForSlash, operationNames, type AnyOperation } from '../src/core/catalogue.ts';
import { helpText, parseVerbLine, runCli } from '../src/cli/main.ts';
import { commandSpecs, parseLine } from '../src/demo/console.ts';
import { loadCommands } from '../src/discord/commands.ts';

const ops = operationNames.map((name) => OPERATIONS[name] as AnyOperation);

async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCli(argv, { out: (s) => (out += s + '\n'), err: (s) => (err += s + '\n') });
  return { code, out, err };
}

test('the slash commands are exactly the catalogue operations Discord offers, with their options and bounds', async () => {
  const offered = new Set<string>();
  for (const command of (await loadCommands()).values()) {
    const json = command.data.toJSON();
    const subs = (json.options ?? []).filter((o) => o.type === 1) as Array<{
      name: string;
      description: string;
      options?: Array<{ name: string; min_value?: number; max_value?: number; choices?: Array<{ value: string }> }>;
    }>;
    for (const sub of subs.length ? subs : [{ name: null, description: json.description, options: json.options as never }]) {
      const op = operationForSlash(json.name, sub.name);
      assert.ok(op, `/${json.name} ${sub.name ?? ''} has no operation in the catalogue`);
      offered.add(op.name);
      assert.equal(sub.description, sub.name ? op.summary : json.description);
      // Integers with their bounds, choices (e.g. /pnl's period) with their list; PIDs are not typed in Discord.
      const typed = op.options.filter(isValueOption);
      assert.deepEqual(
        (sub.options ?? []).map((o) => [o.name, o.min_value, o.max_value, o.choices?.map((c) => c.value)]),
        typed.map((o) => (o.kind === 'integer' ? [o.name, o.min, o.max, undefined] : [o.name, undefined, undefined, [...o.choices]])),
        `/${json.name} ${sub.name ?? ''} options`,
      );
    }
  }
  assert.deepEqual([...offered].sort(), ops.filter((o) => o.slash).map((o) => o.name).sort());
});

test('the console offers the same commands and checks the same bounds', () => {
  const specs = commandSpecs();
  assert.deepEqual(specs.map((s) => s.operation).sort(), ops.filter((o) => o.slash).map((o) => o.name).sort());
  const parsed = parseLine('/bot logs lines:500', specs);
  assert.equal(parsed.kind, 'problem');
  assert.match((parsed as { message: string }).message, /lines is "500": expected a whole number from 1 to 200/);
  const ok = parseLine('/alerts 3', specs);
  assert.equal(ok.kind, 'run');
  assert.equal((ok as { options: Map<string, number> }).options.get('count'), 3);
});

test('the CLI refuses, by name, an unknown flag, a bad value, an unknown verb and a stray word (exit 2)', async () => {
  const bogus = await cli(['status', '--bogus']);
  assert.deepEqual([bogus.code, bogus.err.trim()], [2, 'status: unknown option --bogus; it takes: [--json]']);
  const value = await cli(['logs', '--lines', 'many']);
  assert.deepEqual([value.code, value.err.trim()], [2, 'logs: --lines is "many": expected a whole number from 1 to 200']);
  const typo = await cli(['flaten', '--yes']);
  assert.equal(typo.code, 2);
  assert.match(typo.err, /^Unknown command "flaten"\. Did you mean "flatten"\?/);
  const stray = await cli(['trades', 'today']);
  assert.deepEqual([stray.code, stray.err.trim()], [2, 'trades takes no words, got "today". Usage: tradewarden trades']);
  const yesWhereNoneAsked = await cli(['stop', '--yes']);
  assert.equal(yesWhereNoneAsked.code, 2, 'only flatten takes --yes');
  const pids = await cli(['stop-duplicates', '12', 'x']);
  assert.deepEqual([pids.code, pids.err.trim()], [2, 'stop-duplicates: "x" is not a PID: expected positive whole numbers']);
});

test('the CLI parses each verb into the catalogue arguments', () => {
  assert.deepEqual(parseVerbLine('alerts', ['--count', '5', '--json']).args, { count: 5 });
  assert.deepEqual(parseVerbLine('stop-duplicates', ['4242', '4243']).args, { pids: [4242, 4243] });
  assert.equal(parseVerbLine('flatten', ['--yes']).yes, true);
});

test('--help is generated from the catalogue: every verb, its options and its confirmation', async () => {
  const help = await cli(['--help']);
  assert.equal(help.code, 0);
  for (const op of ops) assert.match(help.out, new RegExp(`^  ${op.name}\\b.*${op.summary.replace(/[()]/g, '\\$&')}`, 'm'), `${op.name} missing from --help`);
  assert.equal(helpText(), help.out.trimEnd());
  const flatten = await cli(['flatten', '--help']);
  assert.match(flatten.out, /Usage: tradewarden flatten \[--yes\] \[--json\]/);
  assert.match(flatten.out, /Asks you to type FLATTEN to confirm, unless --yes is given\./);
  const logs = await cli(['help', 'logs']);
  assert.match(logs.out, /--lines N {2}How many lines \(1–200, default 30\)/);
});

test('a choice option takes one word of its list, whatever the case, and names the list otherwise', () => {
  const period = { kind: 'choice', name: 'period', description: 'Which period', choices: ['day', 'week', 'month'], default: 'day' } as const;
  assert.equal(checkValue(period, 'Week'), 'week');
  assert.deepEqual(checkValue(period, 'year'), { problem: 'period is "year": expected one of day, week, month' });
  assert.deepEqual(checkValue({ kind: 'integer', name: 'count', description: '', min: 1, max: 25, default: 10 }, '26'), {
    problem: 'count is "26": expected a whole number from 1 to 25',
  });
});
