/** Shared pieces: numbers with intervals, tables, and Vega-Lite plots rendered without eval. */
import type { ComponentChildren } from 'preact';
import { useEffect, useRef } from 'preact/hooks';
import { parse, View } from 'vega';
import { expressionInterpreter } from 'vega-interpreter';
import { compile, type TopLevelSpec } from 'vega-lite';

export const fmt = (x: number | null | undefined, digits = 3): string => (x === null || x === undefined || Number.isNaN(x) ? '–' : Number.isInteger(x) ? String(x) : x.toFixed(digits));

export function Interval({ ci }: { ci: { low: number | null; high: number | null } | null | undefined }) {
  return ci ? <span class="ci">[{fmt(ci.low)}, {fmt(ci.high)}]</span> : <span class="ci">no interval</span>;
}

export function Value(props: { value: number | null; ci?: { low: number | null; high: number | null } | null; n?: number }) {
  return (
    <span>
      {fmt(props.value)} <Interval ci={props.ci} />
      {props.n !== undefined && <span class="ci"> n={props.n}</span>}
    </span>
  );
}

export function Json({ value }: { value: unknown }) {
  return <pre class="json">{typeof value === 'string' ? value : JSON.stringify(value, null, 2)}</pre>;
}

export function Note({ children }: { children: ComponentChildren }) {
  return <p class="note">{children}</p>;
}

/**
 * A Vega-Lite plot. The strict CSP forbids eval, so the spec's expressions run in Vega's
 * interpreter (parse with ast: true), and marks are drawn as SVG (text as text nodes).
 */
export function Plot({ spec, label }: { spec: TopLevelSpec; label: string }) {
  const el = useRef<HTMLDivElement>(null);
  const key = JSON.stringify(spec);
  useEffect(() => {
    if (!el.current) return;
    const view = new View(parse(compile(spec).spec, undefined, { ast: true }), { expr: expressionInterpreter, renderer: 'svg', container: el.current, hover: true });
    void view.runAsync();
    return () => view.finalize();
  }, [key]);
  return <div class="plot" role="img" aria-label={label} data-plot={label} ref={el} />;
}
