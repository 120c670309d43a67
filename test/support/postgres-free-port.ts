/** Moved to cli/demo/free-port.ts (production code needs it, and never imports test/); kept only for imports still in flight. */
export { freeLoopbackPort } from '../../cli/demo/free-port.js';
