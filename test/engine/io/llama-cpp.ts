/**
 * Test support: llama.cpp through node-llama-cpp (devDependency, prebuilt CPU binaries shipped as npm
 * packages; nothing is downloaded or built). Used by the GGUF tests here and by the engine's greedy
 * parity test. Returns null when node-llama-cpp is not installed so callers can skip.
 */
export interface LlamaCppRun {
  /** llama.cpp's tokenization of `text`, special tokens parsed (node-llama-cpp adds no BOS here; evaluation does when the GGUF asks). */
  tokenize(text: string): number[];
  /** Greedy (temperature 0) continuation of `prompt` for `steps` tokens, optionally with LoRA adapters. */
  greedy(prompt: number[], steps: number, lora?: { filePath: string; scale?: number }[]): Promise<number[]>;
  dispose(): Promise<void>;
}

type NodeLlamaCpp = typeof import('node-llama-cpp');

let llamaPromise: Promise<{ module: NodeLlamaCpp; llama: Awaited<ReturnType<NodeLlamaCpp['getLlama']>> } | null> | undefined;

async function getLlamaOnce() {
  llamaPromise ??= (async () => {
    let module: NodeLlamaCpp;
    try {
      module = await import('node-llama-cpp');
    } catch {
      return null;
    }
    // build: 'never' — use the prebuilt binary or fail; never try to download llama.cpp sources.
    const llama = await module.getLlama({ gpu: false, build: 'never', logLevel: module.LlamaLogLevel.error, progressLogs: false });
    return { module, llama };
  })();
  return llamaPromise;
}

/** Opens a GGUF model in llama.cpp, or returns null when node-llama-cpp is unavailable. */
export async function openLlamaCpp(modelPath: string): Promise<LlamaCppRun | null> {
  const loaded = await getLlamaOnce();
  if (!loaded) return null;
  const model = await loaded.llama.loadModel({ modelPath });
  return {
    tokenize: (text) => model.tokenize(text, true).map(Number),
    async greedy(prompt, steps, lora) {
      // One thread: llama.cpp's worker threads spin-wait, which on a loaded 2-core machine costs seconds per token.
      const context = await model.createContext({ contextSize: 256, threads: 1, ...(lora ? { lora: { adapters: lora } } : {}) });
      try {
        const out: number[] = [];
        const sequence = context.getSequence();
        for await (const token of sequence.evaluate(prompt as never[], { temperature: 0 })) {
          out.push(Number(token));
          if (out.length >= steps) break;
        }
        return out;
      } finally {
        await context.dispose();
      }
    },
    dispose: () => model.dispose(),
  };
}

/** Releases the llama.cpp backend (call once in an after() hook). */
export async function disposeLlamaCpp(): Promise<void> {
  const loaded = await llamaPromise;
  llamaPromise = undefined;
  await loaded?.llama.dispose();
}
