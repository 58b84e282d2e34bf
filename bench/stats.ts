// Figures, not pass/fail: benchmarks print what they measured against their targets (bench/README.md,
// "Targets").
export function summarize(samples: number[]): { n: number; median: number; p95: number; max: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
  return { n: sorted.length, median: at(0.5), p95: at(0.95), max: sorted.at(-1) ?? NaN };
}

export function report(name: string, unit: string, samples: number[], target: string): void {
  const s = summarize(samples);
  const f = (n: number) => n.toFixed(1);
  console.log(`${name.padEnd(44)} n=${String(s.n).padStart(3)}  median ${f(s.median)} ${unit}  p95 ${f(s.p95)} ${unit}  max ${f(s.max)} ${unit}   target ${target}`);
}
