/**
 * Plots: vega-lite specs compiled to vega and rendered to SVG here, on the server, with vega's
 * headless View (no canvas, no browser). The page then inlines the SVG and needs no JavaScript.
 * Vega escapes the text of its marks; `isInertSvg` checks the result before it is inlined.
 */
import { Error as LOG_ERROR, logger, parse, View } from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { isInertSvg } from './escape.js';
import { useMeasuredTextWidths } from './text-width.js';

useMeasuredTextWidths();

/**
 * A vega-lite spec without the boilerplate ($schema, config), which is added here. Typed loosely:
 * the specs are built as plain objects, and vega-lite's own types are a union too deep to build into.
 */
export type PlotSpec = Record<string, unknown>;

export const FONT = 'DejaVu Sans, Liberation Sans, Helvetica, Arial, sans-serif';

const KIND_COLOR: Record<string, string> = { base: '#9a9a9a', prompted: '#5b5b5b', trained: '#1f6fb4', steered: '#d9822b', capped: '#b15928', other: '#6a3d9a' };

/**
 * The colour scale of subject kinds: baselines in greys, trained and steered subjects in colour, the
 * same in every plot; only the kinds present appear in the legend.
 */
export function kindColors(kinds: string[]): { domain: string[]; range: string[] } {
  const domain = Object.keys(KIND_COLOR).filter((k) => kinds.includes(k));
  return { domain, range: domain.map((k) => KIND_COLOR[k]) };
}

const config = {
  font: FONT,
  background: 'white',
  padding: 8,
  view: { stroke: '#d0d0d0' },
  axis: { labelFontSize: 11, titleFontSize: 11, titleFontWeight: 'normal', gridColor: '#ececec', domainColor: '#888', tickColor: '#888', labelLimit: 220 },
  header: { labelFontSize: 12, titleFontSize: 12, labelFontWeight: 'bold' },
  legend: { labelFontSize: 11, titleFontSize: 11, titleFontWeight: 'normal', labelLimit: 220 },
  title: { fontSize: 13, fontWeight: 'normal', anchor: 'start' },
  point: { filled: true, size: 55 },
} as const;

/** Renders one vega-lite spec to an SVG string. Throws if the result is not inert drawing. */
export async function renderPlot(spec: PlotSpec): Promise<string> {
  const full = { $schema: 'https://vega.github.io/schema/vega-lite/v6.json', config, ...spec } as TopLevelSpec;
  // Warnings (e.g. about independent facet scales) are about layout choices made here on purpose.
  const view = new View(parse(compile(full, { logger: logger(LOG_ERROR) }).spec), { renderer: 'none', logLevel: LOG_ERROR });
  try {
    const svg = await view.toSVG();
    if (!isInertSvg(svg)) throw new Error('report: a plot rendered to SVG that contains active content; refusing to inline it');
    return svg;
  } finally {
    view.finalize();
  }
}

/**
 * The layers of a point-with-interval plot: a rule from lo to hi and a point at value, along
 * `axis` ("x" or "y"); the other channels (category axis, colour, offset) come from `encoding`.
 */
export function pointWithInterval(axis: 'x' | 'y', title: string, encoding: Record<string, unknown>, scale?: Record<string, unknown>): Record<string, unknown>[] {
  return [
    {
      mark: { type: 'rule', strokeWidth: 1.6 },
      encoding: { ...encoding, [axis]: { field: 'lo', type: 'quantitative', title, scale, axis: { tickCount: 6 } }, [`${axis}2`]: { field: 'hi' } },
    },
    {
      mark: { type: 'point' },
      encoding: { ...encoding, [axis]: { field: 'value', type: 'quantitative', title, scale, axis: { tickCount: 6 } } },
    },
  ];
}
