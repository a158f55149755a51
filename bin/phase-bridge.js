#!/usr/bin/env node
'use strict';
// Thin launcher: the CLI is compiled TypeScript under dist/ (`npm run build`).
require('../dist/bin/cli.js')
  .main(process.argv)
  .catch((err) => {
    process.stderr.write(`phase-bridge: ${err && err.message ? err.message : String(err)}\n`);
    process.exit(1);
  });
