import type { Estimate } from './model.js';

/** A number as shown in tables: fixed decimals, a true minus sign, "–" when not finite. */
export function num(x: number | undefined, digits = 2): string {
  if (x === undefined || !Number.isFinite(x)) return '–';
  const text = x.toFixed(digits);
  return text.startsWith('-') ? `−${text.slice(1)}` : text;
}

/** "[lo, hi]" for a 95% interval. */
export function interval(e: { lo: number; hi: number } | undefined, digits = 2): string {
  return e && Number.isFinite(e.lo) && Number.isFinite(e.hi) ? `[${num(e.lo, digits)}, ${num(e.hi, digits)}]` : '–';
}

/** A signed number, for shifts and differences. */
export function signed(x: number | undefined, digits = 2): string {
  return x !== undefined && Number.isFinite(x) && x > 0 ? `+${num(x, digits)}` : num(x, digits);
}

/** The three cells a table gives an estimate: value, 95% interval, n. */
export function estimateCells(e: Estimate | undefined, digits = 2, sign = false): string[] {
  if (!e) return ['–', '–', '–'];
  return [sign ? signed(e.value, digits) : num(e.value, digits), interval(e, digits), String(e.n)];
}
