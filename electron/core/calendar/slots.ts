import type { SlotRules, Slot } from '../../../shared/rpc';

/**
 * Free slots from opening hours and Google's busy periods, in pure functions. Opening hours are
 * wall-clock times in the clinic's time zone, so each day's window is converted to UTC on its own
 * (a daylight-saving change moves it by an hour, as the clinic's door does).
 */

export interface Interval {
  start: number;
  end: number;
}

const formats = new Map<string, Intl.DateTimeFormat>();
function partsFormat(timeZone: string): Intl.DateTimeFormat {
  let f = formats.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric', weekday: 'short' });
    formats.set(timeZone, f);
  }
  return f;
}

/** Whether `timeZone` is an IANA zone this runtime knows. */
export function isTimeZone(timeZone: string): boolean {
  try {
    partsFormat(timeZone);
    return true;
  } catch {
    return false;
  }
}

const WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];

/** The wall clock in `timeZone` at instant `at`. */
export function wallClock(at: number, timeZone: string): { year: number; month: number; day: number; hour: number; minute: number; second: number; weekday: number } {
  const p: Record<string, string> = {};
  for (const part of partsFormat(timeZone).formatToParts(at)) p[part.type] = part.value;
  return {
    year: Number(p.year),
    month: Number(p.month),
    day: Number(p.day),
    hour: Number(p.hour),
    minute: Number(p.minute),
    second: Number(p.second),
    weekday: WEEKDAYS.indexOf(p.weekday ?? ''),
  };
}

function offsetAt(at: number, timeZone: string): number {
  const w = wallClock(at, timeZone);
  return Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second) - Math.floor(at / 1000) * 1000;
}

/** The instant a wall-clock time in `timeZone` names (the earlier one in an autumn overlap). */
export function zonedToUtc(year: number, month: number, day: number, minutes: number, timeZone: string): number {
  const naive = Date.UTC(year, month - 1, day, 0, minutes);
  const first = naive - offsetAt(naive, timeZone);
  return naive - offsetAt(first, timeZone);
}

const toMinutes = (hhmm: string): number => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));

/** The opening-hours windows that fall within [from, to), as UTC intervals, in order. */
export function openingWindows(rules: SlotRules, from: number, to: number): Interval[] {
  const windows: Interval[] = [];
  const first = wallClock(from, rules.timeZone);
  // Walk calendar days in the clinic's zone; a day is at most 25 h, so noon-to-noon steps are safe.
  for (let i = 0; ; i++) {
    const noon = Date.UTC(first.year, first.month - 1, first.day + i, 12);
    const d = new Date(noon);
    const [y, m, day, weekday] = [d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate(), d.getUTCDay()];
    const dayStart = zonedToUtc(y, m, day, 0, rules.timeZone);
    if (dayStart >= to) break;
    for (const h of rules.hours) {
      if (h.day !== weekday) continue;
      const start = zonedToUtc(y, m, day, toMinutes(h.from), rules.timeZone);
      const end = zonedToUtc(y, m, day, toMinutes(h.to), rules.timeZone);
      if (end > from && start < to && end > start) windows.push({ start: Math.max(start, from), end: Math.min(end, to) });
    }
    if (i > 400) break;
  }
  return windows.sort((a, b) => a.start - b.start);
}

/**
 * Slots of `slotMinutes` inside the opening hours, each at least `bufferMinutes` away from every
 * busy period. Slots start on the window's grid (09:00, 09:30, …), not at odd minutes after `from`.
 */
export function freeSlots(rules: SlotRules, busy: readonly Interval[], from: number, to: number): Slot[] {
  const len = rules.slotMinutes * 60_000;
  const buffer = rules.bufferMinutes * 60_000;
  const sorted = [...busy].sort((a, b) => a.start - b.start);
  const slots: Slot[] = [];
  for (const w of openingWindows(rules, from, to)) {
    const gridStart = openingStart(rules, w);
    for (let s = gridStart; s + len <= w.end; s += len + buffer) {
      if (s < from) continue;
      const e = s + len;
      if (!overlapsAny(sorted, s - buffer, e + buffer)) slots.push({ start: s, end: e });
    }
  }
  return slots;
}

/** The window's own opening time (a window clipped by `from` keeps the grid of its opening). */
function openingStart(rules: SlotRules, w: Interval): number {
  const local = wallClock(w.start, rules.timeZone);
  const minutes = local.hour * 60 + local.minute;
  const h = rules.hours.find((x) => x.day === local.weekday && toMinutes(x.from) <= minutes && minutes < toMinutes(x.to));
  return h ? zonedToUtc(local.year, local.month, local.day, toMinutes(h.from), rules.timeZone) : w.start;
}

export function overlapsAny(sorted: readonly Interval[], start: number, end: number): boolean {
  for (const b of sorted) {
    if (b.start >= end) return false;
    if (b.end > start) return true;
  }
  return false;
}
