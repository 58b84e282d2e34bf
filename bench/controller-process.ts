// How the benches start the controller: as `npm start` and the ecosystem's PM2 app do
// (bin/controller.js, which runs the built controller), after building it when the build is missing
// or stale, so a figure is never the tsx fallback's by accident. BENCH_CONTROLLER=sources runs
// src/main.ts through tsx instead, for comparison.
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '..');
const { freshBuild } = createRequire(import.meta.url)('../bin/fresh-build.cjs') as { freshBuild: (root: string, build: string) => boolean };

export type ControllerKind = 'built' | 'sources';

export function controllerKind(): ControllerKind {
  const kind = process.env.BENCH_CONTROLLER ?? 'built';
  if (kind !== 'built' && kind !== 'sources') throw new Error(`BENCH_CONTROLLER is "${kind}": use built (the default) or sources`);
  return kind;
}

/** node's arguments (before any of the caller's own) that start the controller of `kind`, from ROOT. */
export function controllerArgs(kind: ControllerKind = controllerKind(), preload: string[] = []): string[] {
  if (kind === 'sources') return ['--import', 'tsx', ...preload, 'src/main.ts'];
  if (!freshBuild(ROOT, 'controller')) execFileSync(process.execPath, [path.join(ROOT, 'scripts/build.js')], { cwd: ROOT, stdio: 'inherit' });
  return [...preload, 'bin/controller.js'];
}
