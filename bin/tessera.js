#!/usr/bin/env node
// The `tessera` command: runs the compiled CLI (built by `npm install` into dist/).
import '../dist/cli/main.js'
