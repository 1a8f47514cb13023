import { start } from '../shared/start.js';

await start('swport', process.argv.slice(2));
