/**
 * llama.cpp's Node binding when installed (CI adds it with `npm install --no-save`; see .ci/run), else
 * null, so the tests that compare with llama.cpp skip instead of failing.
 */
export type NodeLlamaCpp = typeof import('node-llama-cpp');

export const llamaCpp: NodeLlamaCpp | null = await import('node-llama-cpp').catch(() => null);
