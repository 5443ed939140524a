// Turns nsfwjs' bundled model modules back into TF.js' standard files.
//
//   node scripts/unwrap_tfjs_module.js MODEL_MODULE WEIGHTS_MODULE DEST
//
// MODEL_MODULE (model.min.js) is a browserify UMD module exporting the
// model.json object; WEIGHTS_MODULE (group1-shard1of1.min.js) one exporting
// the weights as a base64 string. Writes DEST/model.json and, named after the
// weights module, DEST/group1-shard1of1.bin. The modules are evaluated in an
// empty sandbox (no require, no globals): they only return their data.
'use strict';
const fs = require('fs');
const path = require('path');
const vm = require('vm');

function moduleExports(file) {
  const module = {exports: {}};
  vm.runInNewContext(fs.readFileSync(file, 'utf8'), {module, exports: module.exports},
                     {filename: file, timeout: 60000});
  return module.exports;
}

function main() {
  const [modelModule, weightsModule, dest] = process.argv.slice(2);
  if (!dest) {
    console.error('usage: unwrap_tfjs_module.js MODEL_MODULE WEIGHTS_MODULE DEST');
    process.exit(2);
  }
  const model = moduleExports(modelModule);
  if (!model || typeof model !== 'object' || !model.modelTopology || !model.weightsManifest)
    throw new Error(`${modelModule} does not export a model.json object`);
  const base64 = moduleExports(weightsModule);
  if (typeof base64 !== 'string') throw new Error(`${weightsModule} does not export a string`);
  const weights = Buffer.from(base64, 'base64');

  const shard = path.basename(weightsModule).replace(/\.min\.js$|\.js$/, '');
  const paths = model.weightsManifest.flatMap(g => g.paths);
  if (paths.length !== 1 || paths[0] !== shard)
    throw new Error(`expected one weight file '${shard}' in the manifest, got ${paths.join(', ')}`);
  // Standard TF.js file names end in .bin.
  for (const g of model.weightsManifest) g.paths = [`${shard}.bin`];

  fs.mkdirSync(dest, {recursive: true});
  fs.writeFileSync(path.join(dest, `${shard}.bin`), weights);
  fs.writeFileSync(path.join(dest, 'model.json'), JSON.stringify(model));
}

main();
