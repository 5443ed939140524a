#!/usr/bin/env node
// Runs an ONNX model with ONNX Runtime (npm onnxruntime-node, CPU, graph
// optimisations disabled so every node runs as written in fp32) and writes
// each output as ort_output_<k>.npy: the independent reference graft's
// whole-model tests compare against.
//
//   node scripts/ort_reference.js MODEL.onnx INPUT.npy [INPUT2.npy ...]
//        [--out DIR] [--compare PREFIX]
//
// Inputs are fed to the model's inputs in order; outputs are numbered in the
// model's output order. --out defaults to the model's folder. --compare PREFIX
// prints the largest difference to PREFIX_<k>.npy files in DIR (e.g. the
// PyTorch outputs). onnxruntime-node is looked up in tools/ort/node_modules:
//   cd tools/ort && ONNXRUNTIME_NODE_INSTALL=skip npm install onnxruntime-node@1.30.0
'use strict';

const fs = require('fs');
const path = require('path');

const ORT_DIR = path.join(__dirname, '..', 'tools', 'ort', 'node_modules', 'onnxruntime-node');
const ort = require(fs.existsSync(ORT_DIR) ? ORT_DIR : 'onnxruntime-node');

// numpy descr <-> ONNX Runtime tensor type and typed array.
const DTYPES = {
  '<f4': ['float32', Float32Array],
  '<f8': ['float64', Float64Array],
  '<i8': ['int64', BigInt64Array],
  '<i4': ['int32', Int32Array],
  '|i1': ['int8', Int8Array],
  '|u1': ['uint8', Uint8Array],
  '|b1': ['bool', Uint8Array],
};

function readNpy(file) {
  const buf = fs.readFileSync(file);
  if (buf.toString('latin1', 0, 6) !== '\x93NUMPY') throw new Error(`${file}: not a .npy file`);
  const major = buf[6];
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = buf.toString('latin1', start, start + headerLen);
  const descr = /'descr':\s*'([^']+)'/.exec(header)[1];
  if (/'fortran_order':\s*True/.test(header)) throw new Error(`${file}: Fortran order`);
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)[1];
  const shape = shapeText.split(',').map((s) => s.trim()).filter((s) => s).map(Number);
  const kind = DTYPES[descr.replace('=', '<')];
  if (!kind) throw new Error(`${file}: dtype ${descr} not supported`);
  const body = buf.subarray(start + headerLen);
  const copy = new Uint8Array(body.length);  // aligned copy for the typed array
  copy.set(body);
  const data = new kind[1](copy.buffer);
  return { type: kind[0], shape, data: kind[0] === 'bool' ? data.map((v) => v !== 0) : data };
}

function writeNpy(file, tensor) {
  const entry = Object.entries(DTYPES).find(([, [t]]) => t === tensor.type);
  if (!entry) throw new Error(`output type ${tensor.type} not supported`);
  const dims = tensor.dims.map(String);
  const shape = dims.length === 1 ? `(${dims[0]},)` : `(${dims.join(', ')})`;
  let header = `{'descr': '${entry[0]}', 'fortran_order': False, 'shape': ${shape}, }`;
  // numpy pads the header with spaces and a newline so data starts at a multiple of 64.
  const padded = Math.ceil((10 + header.length + 1) / 64) * 64;
  header = header.padEnd(padded - 10 - 1, ' ') + '\n';
  const pre = Buffer.alloc(10);
  pre.write('\x93NUMPY', 0, 'latin1');
  pre[6] = 1;
  pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  const data = tensor.data;
  const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  fs.writeFileSync(file, Buffer.concat([pre, Buffer.from(header, 'latin1'), bytes]));
}

function maxDiff(a, b) {
  let abs = 0;
  let ref = 0;
  for (let i = 0; i < a.length; i++) {
    abs = Math.max(abs, Math.abs(Number(a[i]) - Number(b[i])));
    ref = Math.max(ref, Math.abs(Number(b[i])));
  }
  return { abs, ref };
}

function parseArgs(argv) {
  const args = { inputs: [], out: null, compare: null };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--out') args.out = argv[++i];
    else if (argv[i] === '--compare') args.compare = argv[++i];
    else if (!args.model) args.model = argv[i];
    else args.inputs.push(argv[i]);
  }
  if (!args.model || args.inputs.length === 0) {
    console.error('usage: ort_reference.js MODEL.onnx INPUT.npy [...] [--out DIR] [--compare PREFIX]');
    process.exit(2);
  }
  args.out = args.out || path.dirname(args.model);
  return args;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const session = await ort.InferenceSession.create(args.model, {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'disabled',
    logSeverityLevel: 3,  // errors only: IR 3 style models otherwise warn per weight
  });
  if (args.inputs.length !== session.inputNames.length) {
    throw new Error(`model has ${session.inputNames.length} inputs, ${args.inputs.length} given`);
  }
  const feeds = {};
  session.inputNames.forEach((name, i) => {
    const t = readNpy(args.inputs[i]);
    feeds[name] = new ort.Tensor(t.type, t.data, t.shape);
  });
  const results = await session.run(feeds);
  session.outputNames.forEach((name, k) => {
    const out = results[name];
    const file = path.join(args.out, `ort_output_${k}.npy`);
    writeNpy(file, out);
    let line = `${path.basename(path.dirname(args.model))}: ${name} -> ${file} [${out.dims.join('x')}]`;
    const other = args.compare && path.join(args.out, `${args.compare}_${k}.npy`);
    if (other && fs.existsSync(other)) {
      const d = maxDiff(readNpy(other).data, out.data);
      line += ` max |${args.compare} - ort| = ${d.abs.toExponential(2)} (max |ort| ${d.ref.toFixed(3)})`;
    }
    console.log(line);
  });
}

main().catch((e) => {
  console.error(e.message || e);
  process.exit(1);
});
