/**
 * Reverse-mode autodiff over the graph IR: grad() walks the nodes between the differentiated
 * tensors and the loss in reverse, calls each op's gradient rule (which appends new nodes to the same
 * graph), and sums gradients where a tensor fans out. Only float tensors that depend on a `wrt`
 * tensor get gradients, so integer paths, frozen params and anything not on a path from `wrt` to the
 * loss add no backward nodes; rules' unneeded side outputs are dropped by the compiler's dead-node
 * elimination.
 */
import { type OpDef, type Tensor, apply, apply1, isFloat } from './ir.js';
import { add } from './ops/elementwise.js';
import { expandAs, zerosLike } from './ops/shape.js';
import { showShape } from './dims.js';

export interface GradOptions {
  /** dL/dloss, loss-shaped (default: ones, i.e. the gradient of the sum of loss). */
  seed?: Tensor;
  /**
   * Activation checkpointing: when given, the backward keeps only these forward tensors (e.g. the
   * residual stream at each layer boundary) and recomputes every other forward value it needs from
   * them, segment by segment, as the gradient reaches each segment. Less memory, ~one extra forward.
   */
  checkpoints?: readonly Tensor[];
}

/**
 * Gradients of `loss` with respect to `wrt` (default: the graph's trainable params), as tensors in
 * the same graph (output them to get them from a session). A non-scalar loss is differentiated as
 * the sum of its elements unless a seed is given. A tensor `loss` does not depend on gets zeros.
 */
export function grad(loss: Tensor, wrt?: readonly Tensor[], seedOrOptions?: Tensor | GradOptions): Tensor[] {
  const opts: GradOptions = seedOrOptions && 'graph' in seedOrOptions ? { seed: seedOrOptions } : (seedOrOptions ?? {});
  const seed = opts.seed;
  const graph = loss.graph;
  const targets = wrt ?? [...graph.params.values()].filter((p) => graph.trainable.has(p.name!));
  if (!isFloat(loss.dtype)) throw new Error(`grad: loss ${loss} is not a float tensor`);
  for (const t of targets) {
    if (t.graph !== graph) throw new Error(`grad: ${t} is from another graph`);
    if (!isFloat(t.dtype)) throw new Error(`grad: cannot differentiate with respect to ${t} (${t.dtype})`);
  }

  // tensors that depend on a target (forward reachability over float values)
  const depends = new Set<Tensor>(targets);
  const lastNode = loss.producer?.id ?? -1;
  const nodes = graph.nodes.slice(0, lastNode + 1);
  for (const node of nodes) {
    if (node.inputs.some((t) => depends.has(t))) for (const o of node.outputs) if (isFloat(o.dtype)) depends.add(o);
  }

  graph.hasBackward = true;
  const barrier = barriers(lastNode);
  const grads = new Map<Tensor, Tensor>();
  grads.set(loss, seed ?? expandAs(graph.scalar(1, loss.dtype), loss));
  const recompute = opts.checkpoints ? recomputer(new Set(opts.checkpoints), lastNode, barrier) : null;
  for (let i = nodes.length - 1; i >= 0; i--) {
    const node = nodes[i];
    const dOut = node.outputs.map((o) => grads.get(o) ?? null);
    if (dOut.every((d) => d === null)) continue;
    const wanted = node.inputs.map((t) => depends.has(t));
    if (!wanted.some(Boolean)) continue;
    if (!node.op.grad) {
      throw new Error(`grad: op ${node.op.type} has no gradient rule${node.op.inferenceOnly ? ' (inference-only)' : ''} but lies between ${targets.map(String).join(', ')} and the loss`);
    }
    // The rule sees forward values that wait for dOut: recomputed copies from the checkpoints, or the
    // values themselves behind a barrier. Otherwise ORT may run a rule's forward-only part (e.g.
    // sigmoid(gate) in SwiGLU's) early, in the forward, and hold its result through the backward.
    const dep = dOut.find((d) => d !== null)!;
    const wait = recompute ?? barrier;
    const ins = node.inputs.map((t) => wait(t, dep));
    const outs = node.outputs.map((t) => wait(t, dep));
    const dIn = node.op.grad(ins, outs, dOut, node.attrs as never, wanted);
    node.inputs.forEach((t, k) => {
      const d = dIn[k];
      if (!wanted[k] || !d) return;
      checkGradShape(node.op.type, t, d);
      const prev = grads.get(t);
      grads.set(t, prev ? add(prev, d) : d);
    });
  }
  return targets.map((t) => grads.get(t) ?? zerosLike(t));
}

/**
 * Returns f(t, dep): t itself for leaves, checkpoints and backward values; otherwise a copy of t
 * recomputed from the checkpoints (cached, so each forward value is recomputed once). The copy's
 * roots wait for `dep` (the gradient reaching the segment first), so ORT cannot run the
 * recomputation early and keep it alive through the backward.
 */
function recomputer(checkpoints: Set<Tensor>, lastForwardNode: number, barrier: Barrier): Barrier {
  const copies = new Map<Tensor, Tensor>();
  const copy = (t: Tensor, dep: Tensor): Tensor => {
    if (!t.producer || checkpoints.has(t) || t.producer.id > lastForwardNode) return t;
    const cached = copies.get(t);
    if (cached) return cached;
    const node = t.producer;
    const ins = node.inputs.map((i) => (checkpoints.has(i) ? barrier(i, dep) : copy(i, dep)));
    const outs = apply(node.op, ins, node.attrs);
    node.outputs.forEach((o, k) => copies.set(o, outs[k]));
    return copies.get(t)!;
  };
  return copy;
}

type Barrier = (t: Tensor, dep: Tensor) => Tensor;

/**
 * Returns f(t, dep): t for leaves and backward values; for a computed forward value, t as seen
 * once dep exists (one barrier per forward value, made at its first use: the gradient reaching its
 * consumer last in the forward, i.e. first in the backward).
 */
function barriers(lastForwardNode: number): Barrier {
  const made = new Map<Tensor, Tensor>();
  return (t, dep) => {
    if (!t.producer || t.producer.id > lastForwardNode) return t;
    let b = made.get(t);
    if (!b) made.set(t, (b = apply1(After, [t, dep], {})));
    return b;
  };
}

/** x, once dep has been computed: a zero-copy Reshape whose shape input depends on dep's size. */
const After: OpDef = {
  type: 'After',
  shape: ([x]) => [{ dtype: x.dtype, shape: [...x.shape] }],
  onnx: (ctx, [x, dep], [y]) => {
    const [shape, size, zero, sameShape] = ['shape', 'dep_size', 'zero', 'same_shape'].map((h) => ctx.fresh(h));
    ctx.emit('Shape', [x], [shape]);
    ctx.emit('Size', [dep], [size]);
    ctx.emit('Mul', [size, ctx.constInt64([0], true)], [zero]);
    ctx.emit('Add', [shape, zero], [sameShape]);
    ctx.emit('Reshape', [x, sameShape], [y]);
  },
  grad: (_i, _o, [g]) => [g, null],
};

function checkGradShape(op: string, t: Tensor, d: Tensor): void {
  const bad =
    d.rank !== t.rank || d.dtype !== t.dtype || t.shape.some((dim, i) => typeof dim === 'number' && typeof d.shape[i] === 'number' && dim !== d.shape[i]);
  if (bad) throw new Error(`grad: rule of ${op} gave ${d.dtype}${showShape(d.shape)} for ${t.dtype}${showShape(t.shape)} (a bug in that rule)`);
}
