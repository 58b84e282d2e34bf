// The child process that draws charts (src/render/chart.ts) for the controller. Run by
// chart-renderer.ts, never by hand: requests and PNGs go over the IPC channel; it exits when the
// controller closes the channel or goes away.
import { renderEquityChart, renderTradeRateChart, type EquityChartInput, type TradeRateChartInput } from './chart.ts';

export type ChartRequest =
  | { id: number; kind: 'equity'; input: EquityChartInput }
  | { id: number; kind: 'trade-rate'; input: TradeRateChartInput };

export type ChartAnswer = { id: number; ok: true; png: string; width: number; height: number } | { id: number; ok: false; error: string };

process.on('message', (request: ChartRequest) => {
  const drawing = request.kind === 'equity' ? renderEquityChart(request.input) : renderTradeRateChart(request.input);
  drawing.then(
    (image) => process.send?.({ id: request.id, ok: true, png: image.png.toString('base64'), width: image.width, height: image.height } satisfies ChartAnswer),
    (error: unknown) => process.send?.({ id: request.id, ok: false, error: error instanceof Error ? error.message : String(error) } satisfies ChartAnswer),
  );
});
process.on('disconnect', () => process.exit(0));
