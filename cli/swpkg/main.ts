import { main } from '../shared/main.js';

await main('swpkg', process.argv.slice(2));
