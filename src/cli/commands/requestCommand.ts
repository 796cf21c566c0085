/**
 * The `tessera request` command: its name, help and flags. The client itself (libp2p, viem, the
 * runtime) is ./request.ts, imported when the command runs, so `tessera request --help` and the
 * command list load none of it.
 */
import type { Command } from '../args.js'
import { load } from '../lazy.js'
import { DEFAULT_DEPLOYMENT, DEFAULT_RPC } from './node.js'

const request: Command = {
  name: 'request',
  summary: 'Ask the network for one answer: find offers, pay from escrow, stream the verified text',
  usage:
    'request --bootstrap MULTIADDR --model ROOT_OR_FILE (--prompt TEXT | --prompt-tokens IDS) [--max-tokens N] [--seed N] [--temperature T] [--json] [--out FILE] [--rpc URL] [--deployment FILE] [--data DIR | --key FILE]',
  flags: {
    bootstrap: { type: 'string', description: 'a node to join the network through (multiaddr ending in /p2p/ID)', multiple: true },
    model: { type: 'string', short: 'm', description: 'the model: a GGUF file (tokenizes the prompt) or its 0x root' },
    prompt: { type: 'string', short: 'p', description: 'prompt text (needs the model file)' },
    'prompt-tokens': { type: 'string', description: 'the prompt as comma-separated token ids (with a model root)' },
    'max-tokens': { type: 'number', short: 'n', description: 'tokens to generate at most', default: 64 },
    seed: { type: 'string', description: 'sampling seed', default: '0' },
    temperature: { type: 'number', description: 'sampling temperature (0: greedy)', default: 0 },
    provider: { type: 'string', description: 'ask only this provider (address)' },
    wait: { type: 'number', description: 'seconds to look for offers', default: 10 },
    'min-offers': { type: 'number', description: 'stop looking once this many offers are found (else when none came for 2 s)', default: 1 },
    tries: { type: 'number', description: 'providers tried at most', default: 3 },
    stall: { type: 'number', description: "seconds to wait for a provider's next message before trying the next one", default: 60 },
    json: { type: 'boolean', description: 'print the answer, the offers found and the tries as JSON (no streaming)' },
    out: { type: 'string', description: 'write the job file (for tessera verify --receipt) here' },
    force: { type: 'boolean', description: 'overwrite the --out file' },
    rpc: { type: 'string', description: 'JSON-RPC endpoint', default: DEFAULT_RPC },
    deployment: { type: 'string', description: 'deployment file', default: DEFAULT_DEPLOYMENT },
    data: { type: 'string', description: 'a node folder whose keystore pays (with --passphrase-file or TESSERA_PASSPHRASE)' },
    'passphrase-file': { type: 'string', description: 'file holding the keystore passphrase' },
    key: { type: 'string', description: 'file with the hex private key that pays' },
    account: { type: 'number', description: 'devnet account index when neither --data nor --key is given (local devnet only)', default: 2 },
  },
  async run(args, signal) {
    return (await load(signal, import('./request.js'))).runRequest(args, signal)
  },
}

export const requestCommands: Command[] = [request]
