/** Every CLI command, in the order `tessera --help` lists them. */
import type { Command } from '../args.js'
import { attackCommands } from './attack.js'
import { chainCommands } from './chain.js'
import { demoCommands } from './demo.js'
import { devnetCommands } from './devnet.js'
import { modelCommands } from './model.js'
import { nodeCommands } from './node.js'
import { requestCommands } from './requestCommand.js'
import { runCommands } from './run.js'

export const commands: Command[] = [...devnetCommands, ...demoCommands, ...modelCommands, ...runCommands, ...chainCommands, ...attackCommands, ...nodeCommands, ...requestCommands]
