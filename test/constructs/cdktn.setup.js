/**
 * Setup of the "constructs (cdktn)" jest project: fails every suite at once when `cdktf` does not resolve to cdktn
 * (a mapping that silently stopped working would run the cdktf suites twice and prove nothing).
 */
const mapped = require('cdktf');
const cdktn = require('cdktn');
if (mapped !== cdktn || !require.resolve('cdktf').includes('/node_modules/cdktn/')) {
  throw new Error(`the cdktn project expects 'cdktf' to resolve to cdktn, got ${require.resolve('cdktf')}`);
}
