// Flatten of 50 positions against the local paper broker, verified flat (target < 3 s).
import { AlpacaBroker } from '../src/broker/alpaca.ts';
import { flattenAccount } from '../src/core/flatten.ts';
import { startPaperBroker } from '../testkit/paper-broker.ts';
import { report } from './stats.ts';

const symbols = Array.from({ length: 50 }, (_, i) => `SYM${String(i).padStart(2, '0')}`);
const paper = await startPaperBroker({ keyId: 'PKBENCH', secretKey: 'SKBENCH', cash: 10_000_000, prices: Object.fromEntries(symbols.map((s) => [s, 100])) });
const broker = new AlpacaBroker({ baseUrl: paper.url, keyId: 'PKBENCH', secretKey: 'SKBENCH' });
const samples: number[] = [];
try {
  for (let run = 0; run < 10; run++) {
    for (const s of symbols) paper.seedPosition(s, 10, 100);
    const started = performance.now();
    const result = await flattenAccount({ broker, stopTrader: async () => ({ wasRunning: false, forceKilled: false, durationMs: 0 }) });
    samples.push(performance.now() - started);
    if (!result.flat || result.symbols.length !== 50) throw new Error(`run ${run}: not flat (${result.symbols.length} symbols)`);
  }
  report('flatten 50 positions, verified flat', 'ms', samples, '< 3000 ms');
} finally {
  await paper.close();
}
