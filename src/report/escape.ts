/**
 * The one escape for text placed in the report's HTML. Everything that is not markup the report
 * itself writes goes through `escapeHtml`: model replies, judge reasons, trait and persona names,
 * subject labels, run metadata. It is safe in element content and in double- or single-quoted
 * attribute values.
 */
export function escapeHtml(text: unknown): string {
  return String(text)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/**
 * Markdown text shown verbatim: its inline markers and link brackets backslash-escaped, then "&", "<" and ">" as
 * entities (GitHub renders raw HTML inside Markdown; quotes need no escaping outside attributes).
 */
export function escapeMarkdownText(text: unknown): string {
  return String(text)
    .replace(/([\\`*_#|~])/g, '\\$1')
    .replace(/\](?=[([:])/g, '\\]') // a "]" that would close a link; intervals like [0.1, 0.2] stay as they are
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;');
}

/** A Markdown table cell: escaped text, line breaks folded into <br> so the row stays one line. */
export function escapeMarkdownCell(text: unknown): string {
  return escapeMarkdownText(text).replace(/\r?\n/g, '<br>');
}

/** The SVG elements vega's string renderer writes; anything else is refused. */
const SVG_ELEMENTS = new Set(['svg', 'g', 'path', 'rect', 'line', 'circle', 'ellipse', 'polygon', 'polyline', 'text', 'tspan', 'title', 'desc', 'defs', 'clippath', 'lineargradient', 'radialgradient', 'stop', 'pattern', 'mask']);
/** Attributes whose url(...) would be fetched; only same-document references (#id) are allowed. */
const URL_ATTRIBUTES = /^(fill|stroke|clip-path|mask|filter|marker-start|marker-mid|marker-end|style)$/i;

/**
 * Server-rendered SVG is inlined into the page, so check that it is drawing only: vega escapes the
 * text of its marks and attribute values, and this refuses anything that could run or load (script,
 * foreignObject, images, event handlers, links, external url() references) in case a label ever
 * slipped through unescaped. Text content is not inspected: there, "<" is always "&lt;".
 */
export function isInertSvg(svg: string): boolean {
  if (!/^<svg[\s>]/.test(svg) || !svg.endsWith('</svg>')) return false;
  let depth = 0;
  for (const tag of svg.matchAll(/<(\/?)([A-Za-z][\w:-]*)((?:[^>"']|"[^"]*"|'[^']*')*)>/g)) {
    const [whole, closing, name, attributes] = tag;
    if (!SVG_ELEMENTS.has(name.toLowerCase())) return false;
    if (name === 'svg' && !whole.endsWith('/>')) depth += closing ? -1 : 1;
    if (name === 'svg' && depth > 1) return false; // one root, no nested documents
    for (const [, attr, value] of attributes.matchAll(/([^\s=]+)\s*=\s*(?:"([^"]*)"|'([^']*)')/g)) {
      if (/^on/i.test(attr) || /href$/i.test(attr)) return false;
      if (URL_ATTRIBUTES.test(attr) && /url\s*\(\s*(?!['"]?#)/i.test(value ?? '')) return false;
    }
  }
  // Every "<" must have opened one of the tags checked above.
  const tags = svg.match(/<(\/?)([A-Za-z][\w:-]*)((?:[^>"']|"[^"]*"|'[^']*')*)>/g)?.length ?? 0;
  return tags === (svg.match(/</g) ?? []).length && (svg.match(/<svg[\s>]/g) ?? []).length === 1;
}
