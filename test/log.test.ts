// The logger itself: every line it writes passes through `redact`. The callers (health, the trade
// stream, /bot logs) redact too, so their own log checks pass with an unredacting logger; these
// hand the secret, in each form `redact` covers, straight to the logger.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger, redact, redactDeep, silentLogger, type LogLevel } from '../src/log.ts';

// Shaped like an Alpaca secret key, with a length that gives base64 its padding and base64url a
// character ('-' or '_') that plain base64 spells otherwise.
const secret = 'SKtw0rd~>?9Lq8v2xZQ';
const bytes = Buffer.from(secret, 'utf8');
const forms: Record<string, string> = {
  'as written': secret,
  'base64': bytes.toString('base64'),
  'base64 unpadded': bytes.toString('base64').replace(/=+$/, ''),
  'base64url': bytes.toString('base64url'),
  'hex': bytes.toString('hex'),
  'HEX': bytes.toString('hex').toUpperCase(),
  'URL-encoded': encodeURIComponent(secret),
};

function capture(level: LogLevel = 'debug', secrets: readonly string[] = [secret]) {
  const lines: string[] = [];
  return { lines, logger: createLogger({ secrets, level, write: (line) => lines.push(line) }) };
}

test('the forms under test are distinct, so each one is checked on its own', () => {
  assert.equal(new Set(Object.values(forms)).size, Object.keys(forms).length, `distinct forms: ${JSON.stringify(forms)}`);
  assert.ok(forms.base64.endsWith('='), 'base64 is padded');
  assert.notEqual(forms.base64url, forms['base64 unpadded'], 'base64url differs from base64');
  assert.notEqual(forms['URL-encoded'], secret, 'the URL-encoded form differs from the secret');
});

test('the logger redacts a secret handed straight to it, in every form, at every level', () => {
  const { lines, logger } = capture();
  for (const [name, form] of Object.entries(forms)) {
    for (const level of ['debug', 'info', 'warn', 'error'] as const) {
      lines.length = 0;
      logger[level](`trader said: key=${form} (${name}) end`);
      assert.equal(lines.length, 1, `one line for ${level}`);
      assert.ok(!lines[0].includes(form), `${name} form not written at ${level}: ${lines[0]}`);
      assert.ok(lines[0].endsWith(` ${level.padEnd(5)} trader said: key=[redacted] (${name}) end`), `the rest kept, the ${name} form replaced whole at ${level}: ${lines[0]}`);
    }
  }
});

test('the logger redacts every configured secret, each occurrence, and an Authorization header whatever it holds', () => {
  const other = 'https://hc-ping.com/5b3e2a1c-aaaa';
  const { lines, logger } = capture('info', [secret, other]);
  logger.warn(`${secret} then ${forms.hex} then ${secret}; ping ${other}/fail`);
  logger.error('headers {"Authorization": "Bearer eyJhbGciOi.x-y_z~"} and authorization=basic dXNlcjpwYXNz');
  logger.info('Authorization: Token abc123def');
  logger.info('Authorization : Bearer  spaced.out');
  assert.deepEqual(
    lines.map((l) => l.replace(/^\S+ \S+\s+/, '')),
    [
      '[redacted] then [redacted] then [redacted]; ping [redacted]/fail',
      'headers {"Authorization": "Bearer [redacted]"} and authorization=basic [redacted]',
      'Authorization: Token [redacted]',
      'Authorization : Bearer  [redacted]',
    ],
    'every secret and header value gone, nothing else touched',
  );
});

test('the logger writes a time stamp and the level, and nothing below its level', () => {
  const { lines, logger } = capture('warn');
  logger.debug('d');
  logger.info('i');
  logger.warn('w');
  logger.error('e');
  assert.equal(lines.length, 2, `only warn and error: ${lines.join(' | ')}`);
  assert.match(lines[0], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z warn  w$/, 'ISO time, level padded to 5');
  assert.match(lines[1], /^\S+Z error e$/, 'error line');
  const info = capture('info');
  info.logger.debug('hidden');
  info.logger.info('shown');
  assert.equal(info.lines.length, 1, 'info hides debug');
  const all = capture();
  all.logger.debug('shown');
  assert.equal(all.lines.length, 1, 'debug shows debug');
  const byDefault: string[] = [];
  const defaultLogger = createLogger({ secrets: [], write: (line) => byDefault.push(line) });
  defaultLogger.debug('hidden');
  defaultLogger.info('shown');
  assert.equal(byDefault.length, 1, 'info by default');
});

test('without a writer, lines go to stderr, one per message; the silent logger writes nothing', (t) => {
  const written: string[] = [];
  t.mock.method(process.stderr, 'write', (chunk: string) => (written.push(String(chunk)), true));
  const logger = createLogger({ secrets: [secret] });
  logger.warn(`key ${secret}`);
  for (const level of ['debug', 'info', 'warn', 'error'] as const) silentLogger[level](`key ${secret}`);
  t.mock.restoreAll();
  assert.equal(written.length, 1, `one write: ${JSON.stringify(written)}`);
  assert.match(written[0]!, /^\S+Z warn  key \[redacted\]\n$/, 'the line, redacted, ending in a newline');
});

test('an unknown level is refused, naming the levels', () => {
  assert.throws(() => createLogger({ secrets: [], level: 'verbose' as LogLevel, write: () => {} }), /unknown log level "verbose": expected one of debug, info, warn, error/);
});

test('redact: a secret shorter than 4 characters is left alone (it would shred ordinary words); 4 is enough', () => {
  assert.equal(redact('abc in abcd', ['abc']), 'abc in abcd', 'three characters: untouched');
  assert.equal(redact('YWJj 616263', ['abc']), 'YWJj 616263', 'nor its encoded forms, though they are longer');
  assert.equal(redact('key abcd here', ['abcd']), 'key [redacted] here', 'four characters: redacted');
  assert.equal(redact('nothing to hide', []), 'nothing to hide', 'no secrets: unchanged');
});

test('redact: a form that contains another is removed whole, not leaving the rest of it behind', () => {
  // 'pass%' URL-encodes to 'pass%25', which contains the secret itself: the longer form goes first.
  assert.equal(redact('url=pass%25&user=x and pass%', ['pass%']), 'url=[redacted]&user=x and [redacted]');
});

test('redactDeep: every string inside objects and arrays, other values kept; no secrets hands back the value itself', () => {
  const value = { body: `key ${secret}`, facts: { list: [`a ${forms.hex}`, 3, true, null], n: 7 }, none: undefined };
  assert.deepEqual(redactDeep(value, [secret]), { body: 'key [redacted]', facts: { list: ['a [redacted]', 3, true, null], n: 7 }, none: undefined });
  assert.equal(value.body, `key ${secret}`, 'the input is not changed');
  assert.equal(redactDeep(value, []), value, 'the same object when there is nothing to remove');
  assert.equal(redactDeep(`x ${secret}`, [secret]), 'x [redacted]', 'a bare string');
});
