/** Every CLI command, in the order `tessera --help` lists them. */
import type { Command } from '../args.js'

export const commands: Command[] = []
