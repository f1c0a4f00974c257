import { fail, pass, warn, type ClockSample, type DoctorResult } from './types.js';

/** Beyond this the clock is worth fixing (signatures and WeChat's own checks use timestamps), seconds. */
export const CLOCK_WARN_S = 60;

/**
 * Compares the local clock with the other clocks the checks read (the WeCom/WeChat API's `Date` header first,
 * else Redis `TIME`). Over 60 s: a warning; over CALLBACK_MAX_SKEW_S: a failure, since every callback's timestamp
 * would then be refused (401 stale_timestamp).
 * @param maxSkewS CALLBACK_MAX_SKEW_S (0: the callback check is off)
 * @returns null when no other clock was read
 */
export function checkClock(samples: ClockSample[], maxSkewS: number): DoctorResult | null {
  const best = samples.find((s) => s.source.includes('Date header')) ?? samples[0];
  if (!best) return null;
  // A Date header is truncated to the second: the remote clock read somewhere in [remoteMs, remoteMs + resolution).
  const offsetS = (best.localMs - (best.remoteMs + best.resolutionMs / 2)) / 1000;
  const abs = Math.abs(offsetS);
  const detail = `${abs < 1 ? 'within 1 s of' : `${abs.toFixed(0)} s ${offsetS > 0 ? 'ahead of' : 'behind'}`} the ${best.source}`;
  const fix = 'synchronise the clock (NTP: timedatectl set-ntp true, or chrony)';
  if (maxSkewS > 0 && abs > maxSkewS) {
    return fail('clock', `${detail}: beyond CALLBACK_MAX_SKEW_S=${maxSkewS}, every callback would be refused (401 stale_timestamp)`, fix);
  }
  if (abs > CLOCK_WARN_S) return warn('clock', `${detail} (signatures and timestamps are checked against it)`, fix);
  return pass('clock', detail);
}
