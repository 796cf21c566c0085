/** Every CLI command, in the order `tessera --help` lists them. */
import type { Command } from '../args.js'
import { attackCommands } from './attack.js'
import { chainCommands } from './chain.js'
import { dataCommands } from './data.js'
import { demoCommands } from './demo.js'
import { devnetCommands } from './devnet.js'
import { lineageCommands } from './lineage.js'
import { modelCommands } from './model.js'
import { nodeCommands } from './node.js'
import { requestCommands } from './requestCommand.js'
import { runCommands } from './run.js'
import { trainCommands } from './train.js'

export const commands: Command[] = [
  ...devnetCommands,
  ...demoCommands,
  ...modelCommands,
  ...lineageCommands,
  ...runCommands,
  ...trainCommands,
  ...chainCommands,
  ...dataCommands,
  ...attackCommands,
  ...nodeCommands,
  ...requestCommands,
]
