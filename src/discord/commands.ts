// Loads commands/ (one module per slash command) and refuses a malformed or duplicated one clearly.
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { OPERATIONS, operationNames, type AnyOperation } from '../core/catalogue.ts';
import { assertCommand, type Command } from './command.ts';

// commands/ from the sources; from the built controller, its commands/ (scripts/build.js builds
// each module there, beside the code this is bundled into).
export const COMMANDS_DIR = import.meta.filename.endsWith('.ts') ? path.resolve(import.meta.dirname, '../../commands') : path.join(import.meta.dirname, 'commands');

export async function loadCommands(dir = COMMANDS_DIR): Promise<Map<string, Command>> {
  const files = fs.readdirSync(dir).filter((f) => /\.(ts|js)$/.test(f) && !f.endsWith('.d.ts')).sort();
  const commands = new Map<string, Command>();
  for (const file of files) {
    const command = assertCommand(await import(pathToFileURL(path.join(dir, file)).href), file);
    if (commands.has(command.data.name)) throw new Error(`command /${command.data.name} is defined twice (second time in ${file})`);
    commands.set(command.data.name, command);
  }
  if (commands.size === 0) throw new Error(`no command modules found in ${dir}`);
  // Every operation the catalogue puts in Discord must have its command module.
  for (const name of operationNames) {
    const slash = (OPERATIONS[name] as AnyOperation).slash;
    if (slash && !commands.has(slash.command)) throw new Error(`operation ${name} sits under /${slash.command}, but ${dir} has no module defining it`);
  }
  return commands;
}

export const commandDefinitions = (commands: Map<string, Command>) => [...commands.values()].map((c) => c.data.toJSON());
