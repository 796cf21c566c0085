/**
 * The model Tessera ships and serves by default (`npm start`, `tessera demo`, `tessera devnet`): a
 * 1.1M-parameter llama trained by `tessera train` on public-domain English, with its training
 * record beside it in models/default/ (docs/TRAINING.md "The default model"). The relative path is
 * the same from src/runtime and dist/runtime.
 */
import { fileURLToPath } from 'node:url'

export const DEFAULT_MODEL_PATH = fileURLToPath(new URL('../../models/default/model-q8_0.gguf', import.meta.url))
