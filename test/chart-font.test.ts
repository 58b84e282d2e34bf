// Charts on a server without fonts (issue 22): the charts carry their own font (src/render/chart-font.ts).
// The renderer runs in a sandbox that hides every installed font: a mount namespace (unshare; in a
// user namespace unless root) with an empty tmpfs over /usr/share/fonts and /usr/local/share/fonts
// (the folder @napi-rs/canvas's Skia reads), HOME and the working directory empty (~/.fonts, and the
// relative usr/local/share/fonts the package also lists), and FONTCONFIG_FILE an empty fonts.conf
// (the canvas reads no fontconfig today; a build that did would find nothing either).
//
// First the sandbox is shown to work: there the canvas lists no family and text in the family list
// the charts used before (DejaVu Sans, Arial, Helvetica, sans-serif) paints no pixel, so a chart
// without its own font has no label at all. Then both charts, drawn through the renderer process
// in the sandbox, must have their labels — pixels only text paints — and be the same PNG, byte for
// byte, as outside it, where the machine's own fonts are there to be picked instead.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createCanvas, Image } from '@napi-rs/canvas';
import { scratchDir } from '../testkit/scratch.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const FIXTURE = path.join(ROOT, 'test/fixtures/draw-charts.ts');
const TSX = fileURLToPath(import.meta.resolve('tsx'));
const FONT_DIRS = ['/usr/share/fonts', '/usr/local/share/fonts'];
// Half of what the charts' text paints (measured: equity 882 light / 3347 muted px, trade rate 409 /
// 1195) and well above what a chart without a font paints (0 light; 507 muted px for the equity
// chart's dashed base line, 0 for the trade-rate chart).
const FLOORS = { equity: { light: 400, muted: 1500 }, tradeRate: { light: 200, muted: 500 } } as const;

const empty = scratchDir('tw-no-fonts-');
const home = path.join(empty, 'home');
const cwd = path.join(empty, 'cwd');
fs.mkdirSync(home);
fs.mkdirSync(cwd);
fs.writeFileSync(path.join(empty, 'fonts.conf'), '<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig></fontconfig>\n');
const sandboxEnv = {
  PATH: process.env.PATH ?? '',
  HOME: home,
  FONTCONFIG_FILE: path.join(empty, 'fonts.conf'),
  FONTCONFIG_PATH: empty,
  XDG_DATA_HOME: home,
  XDG_DATA_DIRS: empty,
  XDG_CONFIG_HOME: home,
};
// A mount namespace of our own (root needs no user namespace for it; util-linux makes its mounts
// private, so nothing is hidden outside). Each font folder that exists gets an empty tmpfs over it,
// then the command runs in its place.
const UNSHARE = process.getuid?.() === 0 ? ['--mount'] : ['--user', '--map-root-user', '--mount'];
const HIDE_FONTS = `for dir in ${FONT_DIRS.join(' ')}; do if [ -d "$dir" ]; then mount -t tmpfs tmpfs "$dir" || exit 97; fi; done; exec "$@"`;

function drawCharts(mode: 'installed-fonts' | 'charts', sandboxed: boolean): Record<string, unknown> {
  const node = [process.execPath, '--import', TSX, FIXTURE, mode];
  const run = sandboxed
    ? spawnSync('unshare', [...UNSHARE, 'sh', '-c', HIDE_FONTS, 'sh', ...node], { cwd, env: sandboxEnv, encoding: 'utf8' })
    : spawnSync(node[0]!, node.slice(1), { cwd: ROOT, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? home }, encoding: 'utf8' });
  assert.equal(run.status, 0, `draw-charts ${mode}${sandboxed ? ' in the sandbox' : ''} exited ${run.status}: ${run.stderr}`);
  return JSON.parse(run.stdout) as Record<string, unknown>;
}

/** Pixels only a chart's text paints: near-grey (the charts' other colours are green, red, blue, amber, or dark grid). */
function textInk(png: Buffer): { light: number; muted: number } {
  const image = new Image();
  image.src = png;
  const canvas = createCanvas(image.width, image.height);
  const context = canvas.getContext('2d');
  context.drawImage(image, 0, 0);
  const pixels = context.getImageData(0, 0, image.width, image.height).data;
  let light = 0;
  let muted = 0;
  for (let i = 0; i < pixels.length; i += 4) {
    const high = Math.max(pixels[i]!, pixels[i + 1]!, pixels[i + 2]!);
    const low = Math.min(pixels[i]!, pixels[i + 1]!, pixels[i + 2]!);
    if (high - low > 24) continue;
    if (low >= 180) light++; // the title and legend (#dbdee1)
    else if (low >= 96) muted++; // the axis ticks (#949ba4), and the equity chart's dashed base line
  }
  return { light, muted };
}

test('charts draw their labels with their own font where no font is installed, the same PNG as where fonts are', async (t) => {
  const probe = spawnSync('unshare', [...UNSHARE, 'sh', '-c', HIDE_FONTS, 'sh', 'true'], { encoding: 'utf8' });
  if (probe.status !== 0) {
    const why = probe.error?.message ?? (probe.stderr.trim().split('\n')[0] || `exit status ${probe.status}`);
    t.skip(`cannot hide the installed fonts here (unshare with a mount namespace: ${why})`);
    return;
  }

  const hidden = drawCharts('installed-fonts', true) as { families: string[]; inked: number };
  const installed = drawCharts('installed-fonts', false) as { families: string[]; inked: number };
  t.diagnostic(`installed fonts: ${installed.families.length} families outside the sandbox (text paints ${installed.inked} px), ${hidden.families.length} inside (${hidden.inked} px)`);
  assert.deepEqual(hidden.families, [], 'the sandbox hides every installed font family from the canvas (else this test proves nothing)');
  assert.equal(hidden.inked, 0, 'in the sandbox, text in an installed family paints nothing: a chart without its own font has no label');

  const inside = drawCharts('charts', true) as Record<'equity' | 'tradeRate', string>;
  const outside = drawCharts('charts', false) as Record<'equity' | 'tradeRate', string>;
  for (const chart of ['equity', 'tradeRate'] as const) {
    const png = Buffer.from(inside[chart], 'base64');
    const ink = textInk(png);
    t.diagnostic(`${chart}: ${png.length} bytes, text ink ${ink.light} light px, ${ink.muted} muted px`);
    const floor = FLOORS[chart];
    assert.ok(ink.light >= floor.light, `${chart}: the legend${chart === 'equity' ? ' and the title' : ''} are drawn in the sandbox (${ink.light} px of light text, at least ${floor.light})`);
    assert.ok(ink.muted >= floor.muted, `${chart}: the axis labels are drawn in the sandbox (${ink.muted} px of muted grey, at least ${floor.muted})`);
    assert.ok(png.equals(Buffer.from(outside[chart], 'base64')), `${chart}: the same PNG with and without installed fonts (${installed.families.length} families outside): every label uses the charts' own font`);
  }
});
