// The file a process is running, from its argv: what tells a copy of the trader (`python3 bot.py`,
// `nohup node bot.js`) from an editor or a `tail` that merely names the file.
import path from 'node:path';

/** Programs that run a script named by their first non-option argument. */
const INTERPRETER = /^(python[\d.]*|pypy[\d.]*|node|nodejs|bun|tsx|ts-node|bash|sh|dash|zsh|ksh|perl|ruby)$/;
/** Interpreter options that take the next word as their value. */
const OPTION_WITH_VALUE = new Set(['-W', '-X', '-r', '--require', '--import', '--loader', '--experimental-loader', '-C', '--conditions', '--title']);
/** Options after which there is no script file: code comes from the command line or a module name. */
const NO_SCRIPT = new Set(['-c', '-m', '-e', '-p', '--eval', '--print']);

/** The file a process is running: argv[0], or an interpreter's script argument. */
export function programOf(argv: readonly string[]): string | undefined {
  const first = argv[0];
  if (!first) return undefined;
  if (!INTERPRETER.test(path.basename(first))) return first;
  for (let i = 1; i < argv.length; i++) {
    const arg = argv[i]!;
    if (NO_SCRIPT.has(arg)) return undefined;
    if (arg === '--') return argv[i + 1];
    if (arg.startsWith('-')) {
      if (OPTION_WITH_VALUE.has(arg)) i++;
      continue;
    }
    return arg;
  }
  return undefined;
}
