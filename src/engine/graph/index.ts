/** The engine's graph IR, ops, autodiff and ONNX compiler. See docs/engine-graph.md. */
export { Graph, Node, Tensor, apply, apply1, isFloat, FLOAT_DTYPES } from './ir.js';
export type { Attrs, DType, Lowering, OnnxAttr, OpDef, ParamOptions, TensorType, TypedArray } from './ir.js';
export { type Dim, dimEq, dimMul, dimProduct, broadcastShapes } from './dims.js';
export { grad, type GradOptions } from './autodiff.js';
export { compile, toBytes, writeModel, liveNodes, DEFAULT_OPSET, ExternalDataFile, isStored, type CompileOptions, type CompiledModel, type StoredWeight, type WeightMap } from './onnx.js';
export * from './ops/elementwise.js';
export * from './ops/reduce.js';
export * from './ops/shape.js';
export * from './ops/linalg.js';
export * from './ops/nn.js';
export type { Operand } from './ops/util.js';
