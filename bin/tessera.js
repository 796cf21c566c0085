#!/usr/bin/env node
// The `tessera` command: runs the compiled CLI, dist/cli/main.js. dist/ is built by `npm install`
// (its prepare script) or `npm run build`; nothing is compiled here, when the command runs.
const main = new URL('../dist/cli/main.js', import.meta.url)
try {
  await import(main.href)
} catch (err) {
  // Only dist/ itself missing gets the hint; any other failure keeps its own message.
  if (err?.code !== 'ERR_MODULE_NOT_FOUND' || !String(err.message).includes(decodeURIComponent(main.pathname))) throw err
  console.error('tessera: dist/cli/main.js is missing: run `npm run build` in the tessera package (npm install does it)')
  process.exit(1)
}
