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
import { silentLogger } from '../src/log.ts';
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

/** A separate process trying to take the socket; resolves with its first line. */
function holder(dataDir: string): { child: ChildProcess; line: Promise<string> } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/control-holder.ts', dataDir], { stdio: ['ignore', 'pipe', 'inherit'] });
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

test('a DATA_DIR too deep for a socket path: a private, hashed socket under the temp dir; too deep even there: a clear error', async () => {
  let deep = freshDataDir();
  while (Buffer.byteLength(path.join(deep, 'controller.sock')) <= MAX_SOCKET_PATH_BYTES) deep = path.join(deep, 'a-rather-long-folder-name');
  fs.mkdirSync(deep, { recursive: true });
  const socketPath = controlSocketPath(deep);
  assert.ok(Buffer.byteLength(socketPath) <= MAX_SOCKET_PATH_BYTES, `short enough: ${socketPath}`);
  assert.equal(path.dirname(socketPath), path.join(os.tmpdir(), `tradewarden-${process.getuid!()}`));
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
    assert.match(e.message, /DATA_DIR .* is too deep for the controller's socket .* use a shorter DATA_DIR or TMPDIR/);
    return true;
  });
});
