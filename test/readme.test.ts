// The README is the front door: what it promises must exist. Every npm script it names, every CLI
// verb and slash command in its table, and every variable of .env.example (documented there too).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { helpText } from '../src/cli/main.ts';
import { loadCommands } from '../src/discord/commands.ts';

const readme = fs.readFileSync('README.md', 'utf8');
const pkg = JSON.parse(fs.readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> };

test('every `npm run X` / `npm test` / `npm start` in the README is a script', () => {
  const named = [...readme.matchAll(/npm (?:run ([\w:-]+)|(test)|(start))\b/g)].map((m) => m[1] ?? m[2] ?? m[3]);
  assert.ok(named.length >= 3, `found ${named.join(', ')}`);
  for (const name of new Set(named)) assert.ok(pkg.scripts[name], `README names npm script "${name}", package.json has none`);
});

test('the command table matches the CLI verbs and the slash commands', async () => {
  const verbs = [...helpText().matchAll(/^ {2}([a-z-]+)/gm)].map((m) => m[1]);
  for (const verb of verbs) assert.match(readme, new RegExp(`\\| \`${verb}\\b`), `CLI verb ${verb} missing from the README table`);
  for (const command of (await loadCommands()).values()) {
    const json = command.data.toJSON();
    const subs = (json.options ?? []).filter((o) => o.type === 1).map((o) => `/${json.name} ${o.name}`);
    for (const shown of subs.length ? subs : [`/${json.name}`]) assert.ok(readme.includes(`\`${shown}`), `${shown} missing from the README`);
  }
});

test('every variable in .env.example is in the README table', () => {
  const example = fs.readFileSync('.env.example', 'utf8');
  const variables = [...example.matchAll(/^([A-Z][A-Z0-9_]+)=/gm)].map((m) => m[1]);
  assert.ok(variables.length > 15, `found ${variables.length}`);
  for (const name of variables) assert.ok(readme.includes(`\`${name}\``), `${name} is in .env.example but not in the README`);
});
