export { Session, availableProviders, floats } from './session.js';
export type { Feed, SessionOptions, TensorData, WeightPlacement } from './session.js';
