/**
 * CPU time from /proc, for benchmarks that compare CPU per record rather than rates (rates move
 * with the load of a shared machine; the CPU a record costs moves much less).
 */
import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second of /proc's CPU times (USER_HZ, 100 on Linux). */
export const CLOCK_TICKS = 100;

/** CPU seconds this process's reaped children have used (a finished `migrate` child included, its threads too). */
export function childrenCpuSeconds(): number {
  const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
  // Fields 16 and 17 of stat (cutime, cstime), counted from field 3 after the command name.
  return (Number(fields[13]) + Number(fields[14])) / CLOCK_TICKS;
}

/**
 * CPU seconds of a PostgreSQL cluster so far: the postmaster, every live child (backends,
 * checkpointer, WAL writer...) and the children it has reaped (finished backends).
 */
export function postgresCpuSeconds(dataDir: string): number {
  const postmaster = Number(readFileSync(`${dataDir}/postmaster.pid`, 'utf8').split('\n')[0]);
  let ticks = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let fields: string[];
    try {
      fields = readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1].split(' ');
    } catch {
      continue; // exited meanwhile
    }
    const pid = Number(entry);
    // Fields after the name: state, ppid, ..., utime (14), stime (15), cutime (16), cstime (17).
    if (pid === postmaster) ticks += Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
    else if (Number(fields[1]) === postmaster) ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks / CLOCK_TICKS;
}
