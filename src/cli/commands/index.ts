/** Every CLI command, in the order `tessera --help` lists them. */
import type { Command } from '../args.js'
import { demoCommands } from './demo.js'
import { runCommands } from './run.js'

export const commands: Command[] = [...demoCommands, ...runCommands]
