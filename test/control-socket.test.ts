// The controller's singleton is a Unix socket the kernel releases: a live holder is never displaced,
// a dead one's socket is taken over at once, and racing starters end with exactly one holder.
// The same socket carries the JSON-lines control protocol.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { ControlServer, ControlUnavailable, MAX_SOCKET_PATH_BYTES, controlSocketPath, requestControl } from '../src/control/socket.ts';
import { OperationError } from '../src/errors.ts';
import { createLogger, silentLogger } from '../src/log.ts';
import { waitFor } from '../testkit/pm2-home.ts';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tw-ctl-sock-'));
const children: ChildProcess[] = [];
after(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  fs.rmSync(root, { recursive: true, force: true });
});
let dirs = 0;
const freshDataDir = () => {
  const dir = path.join(root, `d${++dirs}`);
  fs.mkdirSync(dir);
  return dir;
};

/** A separate process trying to take the socket (with its own environment, e.g. TMPDIR); resolves with its first line. */
function holder(dataDir: string, env: NodeJS.ProcessEnv = process.env): { child: ChildProcess; line: Promise<string> } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/control-holder.ts', dataDir], { stdio: ['ignore', 'pipe', 'inherit'], env });
  children.push(child);
  let out = '';
  const line = new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (chunk) => {
      out += chunk;
      if (out.includes('\n')) resolve(out.split('\n')[0]);
    });
    child.on('exit', () => (out.includes('\n') ? undefined : reject(new Error(`holder exited without a word: ${out}`))));
  });
  return { child, line };
}

/** Raw protocol: send lines, read `count` answer lines. */
async function exchange(socketPath: string, lines: string[], count: number): Promise<Array<Record<string, unknown>>> {
  const socket = net.connect(socketPath);
  await once(socket, 'connect');
  socket.setEncoding('utf8');
  let buffer = '';
  const answers = new Promise<string[]>((resolve) => {
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      const done = buffer.split('\n').filter(Boolean);
      if (done.length >= count) resolve(done);
    });
  });
  socket.write(lines.join('\n') + '\n');
  const result = await answers;
  socket.destroy();
  return result.map((l) => JSON.parse(l) as Record<string, unknown>);
}

test('the socket lives in DATA_DIR, owner-only; a second controller is refused naming the first; hello and health-style ops answer', async () => {
  const dataDir = freshDataDir();
  const server = await ControlServer.listen({ dataDir, logger: silentLogger });
  try {
    assert.equal(server.socketPath, path.join(dataDir, 'controller.sock'));
    const stat = fs.statSync(server.socketPath);
    assert.ok(stat.isSocket(), 'a socket file');
    assert.equal(stat.mode & 0o777, 0o600, 'only the owner can connect');

    await assert.rejects(ControlServer.listen({ dataDir, logger: silentLogger }), (e: unknown) => {
      assert.ok(e instanceof OperationError && e.kind === 'refused', `refused, got ${String(e)}`);
      assert.match(e.message, new RegExp(`another tradewarden controller \\(PID ${process.pid}\\) serves ${dataDir}`));
      return true;
    });
    assert.ok(fs.statSync(server.socketPath).isSocket(), 'the refused start left the live socket alone');

    server.handle('echo', (args) => ({ echoed: args.text }));
    server.handle('broken', () => {
      throw new Error('this op failed');
    });
    assert.deepEqual(await requestControl(dataDir, 'echo', { text: 'hi' }), { echoed: 'hi' });
    const hello = (await requestControl(dataDir, 'hello')) as { pid: number; dataDir: string };
    assert.equal(hello.pid, process.pid);
    assert.equal(hello.dataDir, dataDir);

    // Several requests on one connection are answered in order, errors as values.
    const answers = await exchange(
      server.socketPath,
      ['{"id":1,"op":"echo","args":{"text":"a"}}', 'not json', '{"id":3,"op":"nope"}', '{"id":4,"op":"broken"}', '{"id":5,"op":"echo","args":{"text":"b"}}'],
      5,
    );
    assert.deepEqual(answers[0], { id: 1, ok: true, result: { echoed: 'a' } });
    assert.equal(answers[1].ok, false);
    assert.match(String(answers[1].error), /bad request/);
    assert.match(String(answers[2].error), /unknown op "nope" \(known: hello, echo, broken\)/);
    assert.deepEqual(answers[3], { id: 4, ok: false, error: 'this op failed' });
    assert.deepEqual(answers[4], { id: 5, ok: true, result: { echoed: 'b' } });
  } finally {
    await server.close();
  }
  assert.equal(fs.existsSync(path.join(dataDir, 'controller.sock')), false, 'a clean close removes the socket');
  await assert.rejects(requestControl(dataDir, 'hello'), (e: unknown) => e instanceof ControlUnavailable && /no tradewarden controller serves .*no socket/.test(e.message));
});

test('a SIGKILLed holder: its socket is refused by the kernel and the next start takes over at once', async () => {
  const dataDir = freshDataDir();
  const first = holder(dataDir);
  assert.equal(await first.line, 'won');
  first.child.kill('SIGKILL');
  await once(first.child, 'exit');
  const socketPath = path.join(dataDir, 'controller.sock');
  assert.ok(fs.statSync(socketPath).isSocket(), 'the dead holder left its socket file behind');
  await assert.rejects(requestControl(dataDir, 'hello'), (e: unknown) => e instanceof ControlUnavailable && /connection refused/.test(e.message));

  const server = await ControlServer.listen({ dataDir, logger: silentLogger });
  try {
    assert.equal(((await requestControl(dataDir, 'hello')) as { pid: number }).pid, process.pid, 'the new holder answers');
  } finally {
    await server.close();
  }
});

test('six processes racing for a stale socket: exactly one wins, the others are refused naming it', async () => {
  const dataDir = freshDataDir();
  const dead = holder(dataDir);
  assert.equal(await dead.line, 'won');
  dead.child.kill('SIGKILL');
  await once(dead.child, 'exit');

  const racers = Array.from({ length: 6 }, () => holder(dataDir));
  const lines = await Promise.all(racers.map((r) => r.line));
  const winners = racers.filter((_, i) => lines[i] === 'won');
  assert.equal(winners.length, 1, `exactly one winner: ${lines.join(' | ')}`);
  const winnerPid = winners[0].child.pid;
  for (const line of lines.filter((l) => l !== 'won')) {
    assert.match(line, new RegExp(`^refused: another tradewarden controller \\(PID ${winnerPid}\\) serves`));
  }
  assert.equal(((await requestControl(dataDir, 'hello')) as { pid: number }).pid, winnerPid, 'the socket answers for the winner');
  winners[0].child.kill('SIGKILL');
  await once(winners[0].child, 'exit');
});

test('something that is not a socket where the socket goes is refused, not removed', async () => {
  const dataDir = freshDataDir();
  const squatter = path.join(dataDir, 'controller.sock');
  fs.writeFileSync(squatter, 'not a socket');
  await assert.rejects(ControlServer.listen({ dataDir, logger: silentLogger }), /controller\.sock exists and is not a socket; remove it/);
  assert.equal(fs.readFileSync(squatter, 'utf8'), 'not a socket', 'left as it was');
});

/** A DATA_DIR whose own socket path would be over the limit. */
function deepDataDir(): string {
  let deep = freshDataDir();
  while (Buffer.byteLength(path.join(deep, 'controller.sock')) <= MAX_SOCKET_PATH_BYTES) deep = path.join(deep, 'a-rather-long-folder-name');
  fs.mkdirSync(deep, { recursive: true });
  return deep;
}

test('a DATA_DIR too deep for a socket path: a private, hashed socket under /tmp/tradewarden-<uid>; too deep even there: a clear error', async () => {
  const deep = deepDataDir();
  const socketPath = controlSocketPath(deep);
  assert.ok(Buffer.byteLength(socketPath) <= MAX_SOCKET_PATH_BYTES, `short enough: ${socketPath}`);
  assert.equal(path.dirname(socketPath), path.join('/tmp', `tradewarden-${process.getuid!()}`), 'a fixed folder, whatever TMPDIR says');
  assert.equal(controlSocketPath(deep), socketPath, 'the CLI finds the same one');
  assert.notEqual(controlSocketPath(path.join(deep, 'other')), socketPath, 'another DATA_DIR has its own');

  const server = await ControlServer.listen({ dataDir: deep, logger: silentLogger });
  try {
    assert.equal(server.socketPath, socketPath);
    assert.equal(fs.statSync(path.dirname(socketPath)).mode & 0o777, 0o700, 'the folder is private');
    assert.equal(((await requestControl(deep, 'hello')) as { dataDir: string }).dataDir, deep);
  } finally {
    await server.close();
  }
  assert.throws(() => controlSocketPath(deep, path.join(root, 'x'.repeat(120))), (e: unknown) => {
    assert.ok(e instanceof OperationError && e.kind === 'usage', 'a usage error');
    assert.match(e.message, /DATA_DIR .* is too deep for the controller's socket .* use a shorter DATA_DIR/);
    return true;
  });
});

test('one controller per real DATA_DIR: through a symlink or with another TMPDIR a second one is refused, and a CLI with another TMPDIR finds the first', async () => {
  const deep = deepDataDir();
  const link = path.join(root, `link${++dirs}`); // a short spelling of the deep folder
  fs.symlinkSync(deep, link);
  const otherTmp = path.join(root, `tmp${++dirs}`);
  fs.mkdirSync(otherTmp);
  const server = await ControlServer.listen({ dataDir: deep, logger: silentLogger });
  try {
    assert.equal(controlSocketPath(link), server.socketPath, 'the symlink leads to the same socket');
    await assert.rejects(ControlServer.listen({ dataDir: link, logger: silentLogger }), (e: unknown) => {
      assert.ok(e instanceof OperationError && e.kind === 'refused', `refused through the symlink, got ${String(e)}`);
      assert.match(e.message, new RegExp(`another tradewarden controller \\(PID ${process.pid}\\) serves ${deep}`));
      return true;
    });
    const elsewhere = holder(deep, { ...process.env, TMPDIR: otherTmp });
    assert.match(await elsewhere.line, new RegExp(`^refused: another tradewarden controller \\(PID ${process.pid}\\) serves`), 'a controller started from a shell with another TMPDIR');
    await once(elsewhere.child, 'exit');

    const savedTmp = process.env.TMPDIR;
    process.env.TMPDIR = otherTmp; // a terminal whose TMPDIR differs from the controller's
    try {
      assert.equal(os.tmpdir(), otherTmp, 'the test really changed the temp directory');
      assert.equal(((await requestControl(deep, 'hello')) as { pid: number }).pid, process.pid, 'health from another shell finds the controller');
      assert.equal(((await requestControl(link, 'hello')) as { dataDir: string }).dataDir, deep, 'and through the symlink, naming the real folder');
    } finally {
      if (savedTmp === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = savedTmp;
    }
  } finally {
    await server.close();
  }
});

test('a request line over 64 KiB is refused however it arrives (with its newline in the same write too); one of exactly 64 KiB is served', async () => {
  const dataDir = freshDataDir();
  const server = await ControlServer.listen({ dataDir, logger: silentLogger });
  server.handle('echo', (args) => ({ length: String(args.text).length }));
  /** The bytes of an echo request (one-digit id) around its text. */
  const shell = Buffer.byteLength(JSON.stringify({ id: 1, op: 'echo', args: { text: '' } }));
  /** A valid echo request of exactly `bytes` bytes (without its newline). */
  const request = (id: number, bytes: number) => JSON.stringify({ id, op: 'echo', args: { text: 'x'.repeat(bytes - shell) } });
  try {
    const limit = 64 * 1024;
    assert.deepEqual(await exchange(server.socketPath, [request(1, limit)], 1), [{ id: 1, ok: true, result: { length: limit - shell } }], 'a line at the limit is served');

    // Over by one byte, sent in one write with its newline after a good request: the good one is
    // answered, the long one refused (never parsed), and the connection closed.
    const socket = net.connect(server.socketPath);
    await once(socket, 'connect');
    socket.setEncoding('utf8');
    let received = '';
    let ended = false;
    socket.on('data', (chunk: string) => (received += chunk));
    socket.on('end', () => (ended = true));
    socket.write(request(2, 100) + '\n' + request(3, limit + 1) + '\n');
    const answers = await waitFor(() => {
      const lines = received.split('\n').filter(Boolean);
      return lines.length >= 2 ? lines.map((l) => JSON.parse(l) as Record<string, unknown>) : undefined;
    }, { what: 'two answers' });
    assert.deepEqual(answers, [
      { id: 2, ok: true, result: { length: 100 - shell } },
      { id: null, ok: false, error: `request longer than ${limit} bytes` },
    ]);
    await waitFor(() => ended, { what: 'the controller to hang up' });
    socket.destroy();
  } finally {
    await server.close();
  }
});

test('DATA_DIR is private: a new one is made 0700 (its logs folder too); an existing 0755 one is tightened at start, and said', async () => {
  const fresh = path.join(root, `d${++dirs}`, 'data');
  const first = await ControlServer.listen({ dataDir: fresh, logger: silentLogger });
  await first.close();
  assert.equal(fs.statSync(fresh).mode & 0o777, 0o700, 'a new DATA_DIR is 0700');
  assert.equal(fs.statSync(path.join(fresh, 'logs')).mode & 0o777, 0o700, "the trader's logs folder is 0700");

  const old = freshDataDir();
  fs.chmodSync(old, 0o755);
  fs.mkdirSync(path.join(old, 'logs'), { mode: 0o755 });
  fs.chmodSync(path.join(old, 'logs'), 0o755);
  const lines: string[] = [];
  const logger = createLogger({ secrets: [], level: 'debug', write: (line) => void lines.push(line) });
  const server = await ControlServer.listen({ dataDir: old, logger });
  await server.close();
  assert.equal(fs.statSync(old).mode & 0o777, 0o700, 'an existing DATA_DIR is tightened');
  assert.equal(fs.statSync(path.join(old, 'logs')).mode & 0o777, 0o700, 'and its logs folder');
  assert.ok(lines.some((l) => / info .*DATA_DIR .* was mode 0755; now 0700/.test(l)), `the change is logged: ${lines.join(' | ')}`);
  assert.ok(lines.some((l) => / info .*DATA_DIR\/logs .* was mode 0755; now 0700/.test(l)), `for the logs folder too: ${lines.join(' | ')}`);
  lines.length = 0;
  await (await ControlServer.listen({ dataDir: old, logger })).close();
  assert.deepEqual(lines.filter((l) => /now 0700/.test(l)), [], 'a private DATA_DIR is left alone, silently');
});
