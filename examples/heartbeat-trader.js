// A stand-in trader: logs a heartbeat line every few seconds and, like a real bot should,
// closes out and exits cleanly on SIGINT (what PM2 sends on stop) or SIGTERM.
//   node examples/heartbeat-trader.js [intervalMs]     (else HEARTBEAT_MS, else 3000)
// With PM2: TRADING_ARGS=60000 sets the interval.
const intervalMs = Number(process.argv[2] ?? process.env.HEARTBEAT_MS) || 3000;
let beats = 0;

console.log(`heartbeat-trader pid=${process.pid} started (every ${intervalMs} ms)`);
const timer = setInterval(() => {
  beats += 1;
  console.log(`heartbeat ${beats} pid=${process.pid}`);
}, intervalMs);

function closeOut(signal) {
  clearInterval(timer);
  console.log(`heartbeat-trader pid=${process.pid} got ${signal}: closing out after ${beats} beats`);
  process.exit(0);
}
process.on('SIGINT', () => closeOut('SIGINT'));
process.on('SIGTERM', () => closeOut('SIGTERM'));
