// The demo's terminal: the one place that writes to it, so an alert, a narration line or a reply
// never tears the line the user is typing, and colour appears only when a person is looking
// (stdout is a TTY and NO_COLOR is unset — https://no-color.org).
import readline from 'node:readline';

export type Tone = 'critical' | 'warning' | 'info' | 'ok' | 'narration' | 'heading' | 'muted' | 'error' | 'plain';

const ANSI: Record<Tone, string> = {
  critical: '\x1b[1;31m', // bold red
  warning: '\x1b[33m',
  info: '\x1b[36m',
  ok: '\x1b[32m',
  narration: '\x1b[35m',
  heading: '\x1b[1m',
  muted: '\x1b[2m',
  error: '\x1b[31m',
  plain: '',
};
const RESET = '\x1b[0m';

export function wantsColour(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(stream.isTTY) && !env.NO_COLOR;
}

export class Terminal {
  private prompt?: readline.Interface;

  constructor(
    private readonly output: NodeJS.WriteStream = process.stdout,
    readonly colour: boolean = wantsColour(output),
  ) {}

  paint(tone: Tone, text: string): string {
    if (!this.colour || tone === 'plain') return text;
    // Per line, so a multi-line block keeps its colour when the terminal wraps or scrolls.
    return text.split('\n').map((line) => `${ANSI[tone]}${line}${RESET}`).join('\n');
  }

  /** Writes whole lines above the prompt, then redraws the prompt with what was being typed. */
  print(text: string, tone: Tone = 'plain'): void {
    const painted = this.paint(tone, text);
    if (!this.prompt) {
      this.output.write(painted + '\n');
      return;
    }
    readline.clearLine(this.output, 0);
    readline.cursorTo(this.output, 0);
    this.output.write(painted + '\n');
    this.prompt.prompt(true);
  }

  /** From now on, prints keep this interactive prompt intact; undefined detaches it. */
  attachPrompt(prompt: readline.Interface | undefined): void {
    this.prompt = prompt;
  }
}
