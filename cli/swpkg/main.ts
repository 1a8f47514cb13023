import { start } from '../shared/start.js';

await start('swpkg', process.argv.slice(2));
