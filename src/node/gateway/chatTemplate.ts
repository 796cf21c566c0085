/**
 * Chat messages to prompt tokens. A model whose GGUF carries `tokenizer.chat_template` gets it
 * rendered by a real Jinja implementation (`@huggingface/jinja`) with `messages`,
 * `add_generation_prompt = true`, `bos_token` and `eos_token` (the library defines `raise_exception`), as llama.cpp's
 * server and transformers' `apply_chat_template` do; the text is then tokenized with special
 * tokens parsed (the template writes `<|im_start|>`, `<|eot_id|>`, ... as text). A template that
 * starts with the BOS text, where the tokenizer adds BOS itself, loses that text first, so the
 * prompt has one BOS (llama.cpp does the same).
 *
 * A model without a template, or whose template does not render a test conversation when the
 * gateway starts (`prepareChatTemplate`), uses the fallback transcript (docs/GATEWAY.md):
 *
 *   system: You are terse.
 *   user: Hello
 *   assistant:
 *
 * one `role: content` line per message and `assistant:` last, tokenized as plain text (the
 * tokenizer's own BOS; no special tokens parsed).
 */
import { Template } from '@huggingface/jinja'
import type { Tokenizer } from '../../engine/tokenizer/index.js'
import type { GatewayModel } from './backend.js'
import { type ChatMessage, GatewayError } from './openai.js'

/** How a model's chat prompts are built: its compiled GGUF template, or the fallback (with why). */
export type ChatFormat = { kind: 'template'; template: Template } | { kind: 'fallback'; warning?: string }

/** Rendered once at start; no system message, since some templates (Mistral's) refuse one. */
const TEST_CONVERSATION: ChatMessage[] = [
  { role: 'user', content: 'Hello' },
  { role: 'assistant', content: 'Hi.' },
  { role: 'user', content: 'Bye' },
]

function specialText(tok: Tokenizer, id: number): string {
  return id >= 0 ? tok.tokenText(id) : ''
}

function render(template: Template, tok: Tokenizer, messages: ChatMessage[]): string {
  return template.render({
    messages,
    add_generation_prompt: true,
    bos_token: specialText(tok, tok.bos),
    eos_token: specialText(tok, tok.eos),
  })
}

/**
 * Compiles a model's template (or `override`) and renders a test conversation with it. A template
 * that fails either way gives the fallback format with a one-line `warning` naming the model.
 */
export function prepareChatTemplate(model: GatewayModel, override?: string): ChatFormat {
  const source = override ?? model.chatTemplate
  if (source === undefined || source === '') return { kind: 'fallback' }
  try {
    const template = new Template(source)
    render(template, model.tokenizer, TEST_CONVERSATION)
    return { kind: 'template', template }
  } catch (e) {
    const why = (e instanceof Error ? e.message : String(e)).split('\n')[0].slice(0, 200)
    return { kind: 'fallback', warning: `${model.id}: the chat template does not render (${why}); using the "role: content" fallback` }
  }
}

/** The fallback transcript (module comment). */
export function fallbackTranscript(messages: ChatMessage[]): string {
  return messages.map((m) => `${m.role}: ${m.content}\n`).join('') + 'assistant:'
}

/** The prompt text and tokens for `messages` in `format`; a template that refuses the messages is a 400. */
export function chatPrompt(model: GatewayModel, format: ChatFormat, messages: ChatMessage[]): { text: string; tokens: number[] } {
  const tok = model.tokenizer
  if (format.kind === 'fallback') {
    const text = fallbackTranscript(messages)
    return { text, tokens: tok.encode(text) }
  }
  let text: string
  try {
    text = render(format.template, tok, messages)
  } catch (e) {
    const why = (e instanceof Error ? e.message : String(e)).split('\n')[0].slice(0, 300)
    throw new GatewayError(400, `the model's chat template refused these messages: ${why}`, { param: 'messages', code: 'chat_template_error', cause: e })
  }
  const bos = specialText(tok, tok.bos)
  if (tok.addBos && bos !== '' && text.startsWith(bos)) text = text.slice(bos.length)
  return { text, tokens: tok.encode(text, { parseSpecial: true }) }
}
