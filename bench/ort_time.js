#!/usr/bin/env node
// Times ONNX Runtime (npm onnxruntime-node, CPU, full graph optimisation, as
// a user would run it) on one model: N runs after warm-up, median ms per run
// and per image. The peer graft's forward pass is compared with.
//
//   node bench/ort_time.js MODEL.onnx [--batch N] [--iterations N] [--threads N]
//
// The input is the model's first input, float32 of shape batch x 3 x 224 x 224
// unless the model declares other fixed dims, filled with a fixed pattern.
'use strict';

const fs = require('fs');
const path = require('path');

const ORT_DIR = path.join(__dirname, '..', 'tools', 'ort', 'node_modules', 'onnxruntime-node');
const ort = require(fs.existsSync(ORT_DIR) ? ORT_DIR : 'onnxruntime-node');

function parseArgs(argv) {
  const args = { batch: 1, iterations: 20, threads: 2 };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--batch') args.batch = Number(argv[++i]);
    else if (argv[i] === '--iterations') args.iterations = Number(argv[++i]);
    else if (argv[i] === '--threads') args.threads = Number(argv[++i]);
    else if (!args.model) args.model = argv[i];
  }
  if (!args.model) {
    console.error('usage: ort_time.js MODEL.onnx [--batch N] [--iterations N] [--threads N]');
    process.exit(2);
  }
  return args;
}

function median(values) {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const session = await ort.InferenceSession.create(args.model, {
    executionProviders: ['cpu'],
    intraOpNumThreads: args.threads,
    interOpNumThreads: 1,
    logSeverityLevel: 3,
  });
  const shape = [args.batch, 3, 224, 224];
  const data = new Float32Array(shape.reduce((a, b) => a * b));
  for (let i = 0; i < data.length; i++) data[i] = ((i % 17) - 8) * 0.1;
  const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', data, shape) };
  for (let i = 0; i < 3; i++) await session.run(feeds);
  const times = [];
  for (let i = 0; i < args.iterations; i++) {
    const start = process.hrtime.bigint();
    await session.run(feeds);
    times.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  const ms = median(times);
  console.log(`ort ${path.basename(args.model)} batch ${args.batch} threads ${args.threads}: ` +
              `median ${ms.toFixed(2)} ms (${(ms / args.batch).toFixed(3)} ms/image), ` +
              `min ${Math.min(...times).toFixed(2)} ms, ${args.iterations} runs`);
}

main().catch((e) => {
  console.error(e.message || e);
  process.exit(1);
});
