/**
 * What read(2) of a perf event returns, decoded by its read_format: one
 * counter, or a whole group with one read; the times it was enabled and
 * running, and the estimate when the PMU was shared (multiplexed):
 * value × enabled / running, the scaling perf stat applies.
 * @module
 */
import * as pe from "../../ffi/perf_event.ts";

/** One counter's value. */
export interface PerfCount {
  /** Events counted while the counter was on the PMU. */
  value: bigint;
  /** Nanoseconds the event was enabled (PERF_FORMAT_TOTAL_TIME_ENABLED; else 0n). */
  timeEnabled: bigint;
  /** Nanoseconds it actually counted (PERF_FORMAT_TOTAL_TIME_RUNNING; else 0n). */
  timeRunning: bigint;
  /**
   * The estimate over the whole enabled time: value × enabled / running when
   * the counter was multiplexed (running < enabled), else value. 0n if it
   * never ran.
   */
  scaled: bigint;
  /** The event's id (PERF_FORMAT_ID; else 0n): the same id samples carry. */
  id: bigint;
  /** Samples lost (PERF_FORMAT_LOST, Linux 6.0+; else 0n). */
  lost: bigint;
}

/** A group's values from one read, leader first. */
export interface PerfGroupCount {
  timeEnabled: bigint;
  timeRunning: bigint;
  values: PerfCount[];
}

/** The scaled estimate of one value. */
export function scale(value: bigint, enabled: bigint, running: bigint): bigint {
  if (running === 0n) return enabled === 0n ? value : 0n;
  if (running >= enabled) return value;
  return (value * enabled) / running;
}

/** Bytes read(2) needs for this read_format (`members`: the group's size). */
export function readSize(readFormat: number, members = 1): number {
  const times = (readFormat & pe.PERF_FORMAT_TOTAL_TIME_ENABLED ? 1 : 0) +
    (readFormat & pe.PERF_FORMAT_TOTAL_TIME_RUNNING ? 1 : 0);
  const per = 1 + (readFormat & pe.PERF_FORMAT_ID ? 1 : 0) +
    (readFormat & pe.PERF_FORMAT_LOST ? 1 : 0);
  return 8 * (readFormat & pe.PERF_FORMAT_GROUP ? 1 + times + members * per : times + per);
}

/** Decodes a non-group read: { value, time_enabled?, time_running?, id?, lost? }. */
export function decodeCount(dv: DataView, readFormat: number): PerfCount {
  let o = 0;
  const next = () => {
    const v = dv.getBigUint64(o, true);
    o += 8;
    return v;
  };
  const value = next();
  const timeEnabled = readFormat & pe.PERF_FORMAT_TOTAL_TIME_ENABLED ? next() : 0n;
  const timeRunning = readFormat & pe.PERF_FORMAT_TOTAL_TIME_RUNNING ? next() : 0n;
  const id = readFormat & pe.PERF_FORMAT_ID ? next() : 0n;
  const lost = readFormat & pe.PERF_FORMAT_LOST ? next() : 0n;
  return {
    value,
    timeEnabled,
    timeRunning,
    scaled: scale(value, timeEnabled, timeRunning),
    id,
    lost,
  };
}

/** Decodes a group read: { nr, time_enabled?, time_running?, { value, id?, lost? }[nr] }. */
export function decodeGroupCount(dv: DataView, readFormat: number): PerfGroupCount {
  let o = 0;
  const next = () => {
    const v = dv.getBigUint64(o, true);
    o += 8;
    return v;
  };
  const nr = Number(next());
  const timeEnabled = readFormat & pe.PERF_FORMAT_TOTAL_TIME_ENABLED ? next() : 0n;
  const timeRunning = readFormat & pe.PERF_FORMAT_TOTAL_TIME_RUNNING ? next() : 0n;
  const values: PerfCount[] = [];
  for (let i = 0; i < nr && o + 8 <= dv.byteLength; i++) {
    const value = next();
    const id = readFormat & pe.PERF_FORMAT_ID ? next() : 0n;
    const lost = readFormat & pe.PERF_FORMAT_LOST ? next() : 0n;
    values.push({
      value,
      timeEnabled,
      timeRunning,
      scaled: scale(value, timeEnabled, timeRunning),
      id,
      lost,
    });
  }
  return { timeEnabled, timeRunning, values };
}

/** Sums counts of one event read from several fds (threads, CPUs). */
export function sumCounts(counts: PerfCount[]): PerfCount {
  const s = {
    value: 0n,
    timeEnabled: 0n,
    timeRunning: 0n,
    scaled: 0n,
    id: counts[0]?.id ?? 0n,
    lost: 0n,
  };
  for (const c of counts) {
    s.value += c.value;
    s.timeEnabled += c.timeEnabled;
    s.timeRunning += c.timeRunning;
    s.scaled += c.scaled;
    s.lost += c.lost;
  }
  return s;
}
