// Composition root of the controller process (`npm start`, and the controller app in ecosystem.config.js).
import { ConfigError, loadConfig } from './config.ts';
import { startController } from './controller.ts';
import { describeError } from './errors.ts';
import { createLogger } from './log.ts';
import { discordFront } from './discord/front.ts';

let config;
try {
  config = loadConfig();
} catch (error) {
  process.stderr.write(`${error instanceof ConfigError ? error.message : describeError(error)}\n`);
  process.exit(2);
}
const logger = createLogger({ secrets: config.secrets, level: config.logLevel ?? 'info' });
if (!config.discord.token) logger.info('DISCORD_TOKEN is not set: running without Discord (alerts go to this log; use the tradewarden CLI).');

const controller = await startController(config, { logger, deliversAlerts: true, fronts: [discordFront] }).catch((error: unknown) => {
  logger.error(`controller did not start: ${describeError(error)}`);
  process.exit(1);
});

let signals = 0;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    // A second signal means "now": PM2 sends SIGINT, then SIGKILL after kill_timeout anyway.
    if (++signals > 1) process.exit(1);
    logger.info(`${signal}: shutting down (the trader keeps running under PM2)`);
    void controller.stop().then(() => process.exit(0));
  });
}
