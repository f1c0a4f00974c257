/**
 * What Linux says about the benchmark's processes and the machine (/proc), for the OA figures. Linux only.
 */
import { readFileSync } from 'node:fs';

/** USER_HZ: /proc times are in clock ticks of 1/100 s on every Linux the bench runs on. */
const CLK_TCK = 100;

/** A process's peak resident set (VmHWM), MiB; NaN once the process is gone. */
export function peakRssMiB(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** CPU a process has used so far (utime + stime, all its threads), s; NaN once the process is gone. */
export function cpuSeconds(pid: number): number {
  try {
    // After the `)` closing the command name: fields 3… of proc(5); utime and stime are fields 14 and 15.
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return NaN;
  }
}

/** The machine's CPU counters at one moment (the `cpu` line of /proc/stat, clock ticks summed over every CPU). */
export interface MachineCpu {
  busy: number;
  total: number;
}

/** Reads the machine's CPU counters; compare two readings with {@link busyFraction}. */
export function machineCpu(): MachineCpu {
  const [, ...ticks] = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/);
  const n = ticks.map(Number);
  // user nice system idle iowait irq softirq steal: idle and iowait are the time nobody wanted the CPU.
  const total = n.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: total - (n[3] ?? 0) - (n[4] ?? 0), total };
}

/** Share of all CPUs busy between two readings, 0..1 (1 = every core busy the whole time). */
export function busyFraction(a: MachineCpu, b: MachineCpu): number {
  return b.total > a.total ? (b.busy - a.busy) / (b.total - a.total) : NaN;
}
