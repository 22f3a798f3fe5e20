/**
 * Dimensions: a number (static) or a string naming a symbol ('B', 'T') or a product of symbols and
 * a coefficient ('B*T', '9*T'). Products keep reshape(-1) round trips exact without runtime shapes.
 */
export type Dim = number | string;

interface Factors {
  coef: number;
  syms: string[];
}

function factors(d: Dim): Factors {
  if (typeof d === 'number') return { coef: d, syms: [] };
  let coef = 1;
  const syms: string[] = [];
  for (const part of d.split('*').map((p) => p.trim())) {
    if (/^\d+$/.test(part)) coef *= Number(part);
    else syms.push(part);
  }
  return { coef, syms: syms.sort() };
}

function fromFactors(f: Factors): Dim {
  if (f.syms.length === 0) return f.coef;
  return [...(f.coef === 1 ? [] : [String(f.coef)]), ...f.syms].join('*');
}

/** Canonical spelling of a dim ('T*B' -> 'B*T', '1*B' -> 'B'). */
export function canonDim(d: Dim): Dim {
  return fromFactors(factors(d));
}

export function dimEq(a: Dim, b: Dim): boolean {
  return canonDim(a) === canonDim(b);
}

export function dimMul(a: Dim, b: Dim): Dim {
  const fa = factors(a);
  const fb = factors(b);
  return fromFactors({ coef: fa.coef * fb.coef, syms: [...fa.syms, ...fb.syms].sort() });
}

export function dimProduct(dims: readonly Dim[]): Dim {
  return dims.reduce<Dim>((acc, d) => dimMul(acc, d), 1);
}

let unknownCounter = 0;
/** A fresh symbol for a dim that cannot be expressed (it cannot be resolved at lowering). */
export function unknownDim(): string {
  return `?${++unknownCounter}`;
}

/** a / b as a dim, or a fresh unknown symbol when not exactly divisible. */
export function dimDiv(a: Dim, b: Dim): Dim {
  const fa = factors(a);
  const fb = factors(b);
  if (fb.coef === 0 || fa.coef % fb.coef !== 0) return unknownDim();
  const syms = [...fa.syms];
  for (const s of fb.syms) {
    const i = syms.indexOf(s);
    if (i < 0) return unknownDim();
    syms.splice(i, 1);
  }
  return fromFactors({ coef: fa.coef / fb.coef, syms });
}

/** The symbols a dim is built from. */
export function dimSymbols(d: Dim): string[] {
  return factors(d).syms;
}

export function dimCoef(d: Dim): number {
  return factors(d).coef;
}

export function isStatic(shape: readonly Dim[]): shape is number[] {
  return shape.every((d) => typeof d === 'number');
}

export function showShape(shape: readonly Dim[]): string {
  return `[${shape.join(', ')}]`;
}

/** numpy broadcasting of two shapes; throws on a static mismatch. Symbolic dims are assumed != 1. */
export function broadcastShapes(a: readonly Dim[], b: readonly Dim[], what: string): Dim[] {
  const rank = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da === 1) out.push(db);
    else if (db === 1 || dimEq(da, db)) out.push(da);
    // two different symbols: trust the model (ORT checks at run time); prefer a plain symbol
    else if (typeof da === 'string' && typeof db === 'string') out.push(/^[A-Za-z_]\w*$/.test(da) ? da : db);
    else if (typeof da === 'string') out.push(db);
    else if (typeof db === 'string') out.push(da);
    else throw new Error(`${what}: cannot broadcast ${showShape(a)} with ${showShape(b)}`);
  }
  return out;
}
