#!/usr/bin/env node
// The installed command: load TypeScript through tsx, then run the CLI.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
await main();
