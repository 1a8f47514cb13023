import { main } from '../shared/main.js';

await main('swport', process.argv.slice(2));
