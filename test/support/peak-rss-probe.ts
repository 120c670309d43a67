/**
 * Loaded into a child process with `node --import <this file>`: when the child exits, writes its
 * peak resident set (getrusage's ru_maxrss, the kernel's VmHWM, worker threads included) in bytes
 * to the file named by MIM_PEAK_RSS_FILE. Read at exit, so no peak between two polls is missed.
 */
import { writeFileSync } from 'node:fs';

const file = process.env.MIM_PEAK_RSS_FILE;
if (file !== undefined) {
  process.on('exit', () => writeFileSync(file, String(process.resourceUsage().maxRSS * 1024)));
}
