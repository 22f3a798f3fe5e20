/**
 * Text widths for vega's layout without a canvas. Headless vega guesses 0.8 em per character, about
 * a third too wide for the page's font, which pushes panels apart and shrinks figures; these are the
 * advance widths of DejaVu Sans (the page's first font; Liberation Sans and Arial are close), measured
 * in Chromium at 100px for ASCII 32-126. Kerning is ignored: labels come out a little wide, never cut.
 */
import * as vega from 'vega';

// prettier-ignore
const NORMAL = [32,40,46,84,64,95,78,27,39,39,50,84,32,36,32,34,64,64,64,64,64,64,64,64,64,64,34,34,84,84,84,53,100,68,69,70,77,63,58,77,75,29,29,66,56,86,75,79,60,79,69,63,61,73,68,99,69,61,69,39,34,39,84,50,50,61,63,55,63,62,35,63,63,28,28,58,28,97,63,61,63,63,41,52,39,63,59,82,59,59,52,64,34,64,84];
// prettier-ignore
const BOLD = [35,46,52,84,70,100,87,31,46,46,52,84,38,42,38,37,70,70,70,70,70,70,70,70,70,70,40,40,84,84,84,58,100,77,76,73,83,68,68,82,84,37,37,77,64,100,84,85,73,85,77,72,68,81,77,110,77,72,73,46,37,46,84,50,50,67,72,59,72,68,44,72,71,34,34,67,34,104,71,69,72,72,49,60,48,71,65,92,65,65,58,71,37,71,84];
/** Characters outside ASCII (Greek, dashes, accented letters): their measured mean. */
const OTHER = { normal: 65, bold: 70 };

export function textWidth(text: string, fontSize: number, bold = false): number {
  const table = bold ? BOLD : NORMAL;
  let width = 0;
  for (const ch of text) {
    const code = ch.codePointAt(0) ?? 0;
    width += code >= 32 && code < 127 ? table[code - 32] : bold ? OTHER.bold : OTHER.normal;
  }
  return (width * fontSize) / 100;
}

interface TextItem {
  text?: unknown;
  fontSize?: number;
  fontWeight?: string | number;
}

/** vega's text-metrics hook (exported at run time, not in its typings). */
const metrics = (vega as unknown as { textMetrics: { width: (item: TextItem, text?: unknown) => number } }).textMetrics;

/** Makes vega lay text out with these widths (process-wide: the report is vega's only user). */
export function useMeasuredTextWidths(): void {
  metrics.width = (item, text) => {
    const value = text ?? item.text;
    const lines = Array.isArray(value) ? value.map(String) : [value === undefined || value === null ? '' : String(value)];
    const bold = item.fontWeight === 'bold' || Number(item.fontWeight) >= 600;
    return Math.max(0, ...lines.map((line) => textWidth(line, item.fontSize ?? 11, bold)));
  };
}
