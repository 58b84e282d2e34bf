// The charts' own font. @napi-rs/canvas reads installed fonts from /usr/share/fonts and ~/.fonts
// only (Skia's directory font manager, no fontconfig): on a server without them (a slim container,
// a fresh VPS) every family a chart names resolves to nothing and each label draws as nothing. So
// the renderer registers Inter (the Latin subset, regular and bold: every character a chart draws
// is ASCII) from the @fontsource/inter package before its first chart, and every chart names only
// that family: the same glyphs on every machine, installed fonts or not.
//
// Resolved through the package, never by a path into this repository: the sources, the built
// controller (dist/controller/) and an installed package each find it in their own node_modules.
// WOFF2, which FreeType inside @napi-rs/canvas reads as it reads TTF.
import { createRequire } from 'node:module';

/** The family name the charts use: one no system installs, so nothing installed can stand in for it. */
export const CHART_FONT_FAMILY = 'tradewarden-chart-sans';

const FACES = ['@fontsource/inter/files/inter-latin-400-normal.woff2', '@fontsource/inter/files/inter-latin-700-normal.woff2'];

/** What registering takes: @napi-rs/canvas's GlobalFonts, as far as this module needs it. */
export interface FontRegistry {
  registerFromPath(path: string, nameAlias?: string): unknown;
}

/**
 * Registers the charts' font with the canvas; throws (and no chart is drawn, the message goes
 * without its picture) when a face cannot be found or read, rather than draw charts whose labels
 * depend on what the machine happens to have installed.
 */
export function registerChartFont(fonts: FontRegistry): string {
  const require = createRequire(import.meta.url);
  for (const face of FACES) {
    let file: string;
    try {
      file = require.resolve(face);
    } catch (error) {
      throw new Error(`the charts' font ${face} is not installed (npm install puts it beside tradewarden): ${error instanceof Error ? error.message : String(error)}`);
    }
    if (!fonts.registerFromPath(file, CHART_FONT_FAMILY)) throw new Error(`the charts' font ${file} could not be read by the canvas`);
  }
  return CHART_FONT_FAMILY;
}
