/** Moved to cli/demo/seeded-random.ts (production code needs it, and never imports test/); kept only for imports still in flight. */
export { seededRandom, type Rand } from '../../cli/demo/seeded-random.js';
