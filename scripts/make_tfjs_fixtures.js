// Reference fixtures for graft's TF.js importer, recorded with TF.js itself
// (npm @tensorflow/tfjs, pure JS, CPU backend).
//
//   (cd tools/tfjs && npm install @tensorflow/tfjs@4.22.0)
//   scripts/fetch_nsfwjs.sh                      # for part 2
//   node scripts/make_tfjs_fixtures.js [OUT] [NSFWJS_DIR]
//
// OUT defaults to tests/data/tfjs, NSFWJS_DIR to models/nsfwjs_mobilenet_v2.
//
// 1. Small Keras-style models built with tf.layers, covering every layer and
//    option graft imports. Each is written as model.json + weight files (some
//    uint8/uint16-quantized, some float16, some in several shards and
//    groups), loaded back into TF.js from exactly those files, and run on
//    fixed inputs: OUT/<model>/in.<input>.npy and out.<output>.npy.
// 2. The nsfwjs MobileNetV2 on real photos (Debian tuxpaint-stamps-default,
//    RGBA PNGs composited on white, padded to a square, resized to 224x224,
//    divided by 255): OUT/nsfwjs/in.input_1.npy (the exact float input) and
//    out.<layer>.npy for the output and two intermediate layers (TF.js' NHWC).
'use strict';
const fs = require('fs');
const path = require('path');
const zlib = require('zlib');

const ROOT = path.join(__dirname, '..');
const tf = require(path.join(ROOT, 'tools/tfjs/node_modules/@tensorflow/tfjs'));

const OUT = process.argv[2] || path.join(ROOT, 'tests/data/tfjs');
const NSFWJS = process.argv[3] || path.join(ROOT, 'models/nsfwjs_mobilenet_v2');
const STAMPS = '/usr/share/tuxpaint/stamps';
const PHOTOS = ['town/monuments/inukshuk-photo.png', 'animals/marsupials/koala.png'];

// --- helpers ---------------------------------------------------------------------

// Deterministic uniform numbers in [0, 1) (mulberry32).
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function saveNpy(file, data, shape) {
  const header0 = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')}${
      shape.length === 1 ? ',' : ''}), }`;
  const pad = 64 - ((10 + header0.length + 1) % 64);
  const header = header0 + ' '.repeat(pad % 64) + '\n';
  const pre = Buffer.alloc(10);
  pre.write('\x93NUMPY', 0, 'latin1');
  pre[6] = 1;
  pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  const body = Buffer.from(new Float32Array(data).buffer);
  fs.writeFileSync(file, Buffer.concat([pre, Buffer.from(header, 'latin1'), body]));
}

function saveTensor(file, t) { saveNpy(file, t.dataSync(), t.shape); }

// Sets every weight from a fixed generator, scaled so activations stay O(1):
// kernels by 1/sqrt(fan in), BatchNorm variances and scales around 1.
function setWeights(model, seed) {
  const r = rng(seed);
  const values = model.weights.map(w => {
    const shape = w.shape, n = shape.reduce((a, b) => a * b, 1);
    const name = w.originalName || w.name;
    const v = new Float32Array(n);
    let lo = -0.5, hi = 0.5;
    if (/moving_variance|gamma/.test(name)) lo = 0.5, hi = 1.5;
    else if (/kernel/.test(name)) {
      const fanIn = /depthwise/.test(name) ? shape[0] * shape[1]
                                           : shape.slice(0, -1).reduce((a, b) => a * b, 1);
      hi = Math.sqrt(3 / fanIn), lo = -hi;
    }
    for (let i = 0; i < n; ++i) v[i] = lo + (hi - lo) * r();
    return tf.tensor(v, shape);
  });
  model.setWeights(values);
}

async function artifactsOf(model) {
  let art;
  await model.save(tf.io.withSaveHandler(async a => {
    art = a;
    return {modelArtifactsInfo: {dateSaved: new Date(), modelTopologyType: 'JSON'}};
  }));
  return art;
}

// Storage of each weight: 'float32' (as TF.js saves it), 'uint8', 'uint16' or
// 'float16' (quantized by hand as the TF.js converter does).
function quantize(spec, values, how) {
  if (how === 'float32') return {spec, bytes: Buffer.from(values.buffer.slice(0))};
  if (how === 'float16') {
    const q = new Uint16Array(values.length);
    for (let i = 0; i < values.length; ++i) q[i] = toHalf(values[i]);
    return {spec: {...spec, quantization: {dtype: 'float16'}}, bytes: Buffer.from(q.buffer)};
  }
  const levels = how === 'uint8' ? 255 : 65535;
  let min = Math.min(...values), max = Math.max(...values);
  if (max === min) max = min + 1;
  const scale = (max - min) / levels;
  const q = how === 'uint8' ? new Uint8Array(values.length) : new Uint16Array(values.length);
  for (let i = 0; i < values.length; ++i) q[i] = Math.round((values[i] - min) / scale);
  return {spec: {...spec, quantization: {dtype: how, min, scale}}, bytes: Buffer.from(q.buffer)};
}

// float32 -> float16 bits, rounding to nearest even.
function toHalf(f) {
  const buf = new DataView(new ArrayBuffer(4));
  buf.setFloat32(0, f);
  const x = buf.getUint32(0);
  const sign = (x >>> 16) & 0x8000;
  let exp = ((x >>> 23) & 0xff) - 127 + 15;
  let mant = x & 0x7fffff;
  if (exp >= 31) return sign | 0x7c00;
  if (exp <= 0) {
    if (exp < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - exp;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1), half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1))) h++;
    return sign | h;
  }
  let h = (exp << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h++;
  return sign | h;
}

// Writes model.json + weight files. `opts.storage(name)` picks each weight's
// storage; `opts.groups` splits the weights into that many manifest groups and
// `opts.shards` each group's bytes into that many files.
async function writeModel(dir, model, opts = {}) {
  const art = await artifactsOf(model);
  const data = new Float32Array(art.weightData);
  let at = 0;
  const entries = art.weightSpecs.map(spec => {
    const n = spec.shape.reduce((a, b) => a * b, 1);
    const values = data.slice(at, at + n);
    at += n;
    return quantize(spec, values, opts.storage ? opts.storage(spec.name) : 'float32');
  });
  const groups = opts.groups || 1, shards = opts.shards || 1;
  const per = Math.ceil(entries.length / groups);
  const manifest = [];
  fs.mkdirSync(dir, {recursive: true});
  for (let g = 0; g < groups; ++g) {
    const part = entries.slice(g * per, (g + 1) * per);
    if (part.length === 0) continue;
    const bytes = Buffer.concat(part.map(e => e.bytes));
    const paths = [];
    const size = Math.ceil(bytes.length / shards);
    for (let s = 0; s < shards; ++s) {
      const file = `group${g + 1}-shard${s + 1}of${shards}.bin`;
      fs.writeFileSync(path.join(dir, file), bytes.subarray(s * size, (s + 1) * size));
      paths.push(file);
    }
    manifest.push({paths, weights: part.map(e => e.spec)});
  }
  const json = {
    format: 'layers-model',
    generatedBy: `TensorFlow.js tfjs-layers v${tf.version.tfjs}`,
    convertedBy: null,
    modelTopology: art.modelTopology,
    weightsManifest: manifest,
  };
  // TF.js leaves depth_multiplier out of SeparableConv2D's config (Keras
  // writes it); without it the files would not load back.
  for (const l of json.modelTopology.config.layers || [])
    if (l.class_name === 'SeparableConv2D')
      l.config.depth_multiplier = model.getLayer(l.name).depthMultiplier;
  if (opts.patch) opts.patch(json.modelTopology);
  fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify(json));
}

// Loads a model.json and its weight files into TF.js (as tf.io.fileSystem
// would, without tfjs-node).
async function readModel(dir) {
  const json = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
  const specs = json.weightsManifest.flatMap(g => g.weights);
  const bytes = Buffer.concat(
      json.weightsManifest.flatMap(g => g.paths.map(p => fs.readFileSync(path.join(dir, p)))));
  const weightData = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length);
  return tf.loadLayersModel(
      tf.io.fromMemory({modelTopology: json.modelTopology, weightSpecs: specs, weightData}));
}

function randomInput(shape, seed, scale = 1) {
  const r = rng(seed), n = shape.reduce((a, b) => a * b, 1);
  const v = new Float32Array(n);
  for (let i = 0; i < n; ++i) v[i] = r() * scale;
  return tf.tensor(v, shape);
}

// Writes the model, reloads it from its files, runs it on seeded inputs and
// records inputs and outputs. `reference(model, inputs)` may replace TF.js'
// own outputs (for Keras settings TF.js ignores).
async function fixture(name, model, opts = {}) {
  const dir = path.join(OUT, name);
  fs.rmSync(dir, {recursive: true, force: true});
  setWeights(model, opts.seed || 1);
  await writeModel(dir, model, opts);
  const loaded = await readModel(dir);
  const inputs = loaded.inputs.map((t, i) =>
      randomInput([2, ...t.shape.slice(1)], 100 + i, opts.inputScale || 1));
  let outputs = opts.reference ? opts.reference(loaded, inputs) : loaded.predict(inputs);
  if (!Array.isArray(outputs)) outputs = [outputs];
  loaded.inputLayers.forEach((l, i) => saveTensor(path.join(dir, `in.${l.name}.npy`), inputs[i]));
  loaded.outputLayers.forEach((l, i) => saveTensor(path.join(dir, `out.${l.name}.npy`), outputs[i]));
  console.log(`${name}: ${loaded.layers.length} layers, outputs ${
      outputs.map(o => `[${o.shape}]`).join(' ')}`);
}

// --- the small models ---------------------------------------------------------------

const L = tf.layers;

// Convolutions: same/valid padding at odd sizes, strides, dilations,
// depthwise multiplier 2, separable convolution (also dilated), activations,
// BatchNorm, Concatenate of channels; rank-4 outputs.
function convModel() {
  const x = tf.input({shape: [9, 9, 3], name: 'image'});
  const c1 = L.conv2d({filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', name: 'c1'}).apply(x);
  const c2 = L.conv2d({filters: 5, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu6', name: 'c2'}).apply(c1);
  const c3 = L.conv2d({filters: 4, kernelSize: [2, 3], strides: [2, 1], padding: 'valid', useBias: false, activation: 'sigmoid', name: 'c3'}).apply(c1);
  const c4 = L.conv2d({filters: 3, kernelSize: 3, dilationRate: 2, padding: 'same', activation: 'hardSigmoid', name: 'c4'}).apply(c1);
  const dw1 = L.depthwiseConv2d({kernelSize: 3, depthMultiplier: 2, strides: 2, padding: 'same', activation: 'tanh', name: 'dw1'}).apply(c1);
  const dw2 = L.depthwiseConv2d({kernelSize: 3, padding: 'same', useBias: false, name: 'dw2'}).apply(c2);
  const sep = L.separableConv2d({filters: 6, kernelSize: 3, strides: 2, padding: 'same', depthMultiplier: 2, activation: 'swish', name: 'sep'}).apply(c1);
  const sep2 = L.separableConv2d({filters: 3, kernelSize: 3, dilationRate: 2, padding: 'valid', name: 'sep2'}).apply(c1);
  const bn = L.batchNormalization({epsilon: 1e-3, name: 'bn'}).apply(c2);
  const bn2 = L.batchNormalization({center: false, scale: false, epsilon: 0.01, name: 'bn2'}).apply(dw2);
  const cat = L.concatenate({name: 'cat'}).apply([bn, dw1, bn2, sep, sep2]);
  const c5 = L.conv2d({filters: 2, kernelSize: 1, strides: 2, padding: 'same', name: 'c5'}).apply(c4);
  return tf.model({inputs: x, outputs: [cat, c3, c5], name: 'convs'});
}

// Merging, padding, pooling, activations as layers; Concatenate of rank 2.
function mergePoolModel() {
  const x = tf.input({shape: [8, 7, 4], name: 'x'});
  const a = L.conv2d({filters: 4, kernelSize: 1, name: 'a'}).apply(x);
  const b = L.conv2d({filters: 4, kernelSize: 1, activation: 'relu', name: 'b'}).apply(x);
  const sum = L.add({name: 'sum'}).apply([a, b, x]);
  const prod = L.multiply({name: 'prod'}).apply([sum, b]);
  const pad = L.zeroPadding2d({padding: [[1, 2], [0, 1]], name: 'pad'}).apply(prod);
  const pad1 = L.zeroPadding2d({padding: 1, name: 'pad1'}).apply(x);
  const mp = L.maxPooling2d({poolSize: 2, name: 'mp'}).apply(pad);
  const mps = L.maxPooling2d({poolSize: 3, strides: 2, padding: 'same', name: 'mps'}).apply(pad1);
  const ap = L.averagePooling2d({poolSize: 3, strides: 2, padding: 'same', name: 'ap'}).apply(prod);
  const apv = L.averagePooling2d({poolSize: [2, 3], strides: [1, 2], padding: 'valid', name: 'apv'}).apply(pad);
  const gap = L.globalAveragePooling2d({name: 'gap'}).apply(mp);
  const gmp = L.globalMaxPooling2d({name: 'gmp'}).apply(ap);
  const gmp2 = L.globalMaxPooling2d({name: 'gmp2'}).apply(mps);
  const relu = L.reLU({name: 'relu'}).apply(L.conv2d({filters: 3, kernelSize: 1, name: 'pre_relu'}).apply(apv));
  const relu6 = L.reLU({maxValue: 2.5, name: 'relu_max'}).apply(L.conv2d({filters: 3, kernelSize: 1, name: 'pre_relu_max'}).apply(apv));
  const leaky = L.leakyReLU({alpha: 0.2, name: 'leaky'}).apply(L.conv2d({filters: 3, kernelSize: 1, name: 'pre_leaky'}).apply(apv));
  const softmax = L.activation({activation: 'softmax', name: 'act_softmax'}).apply(relu);
  const softmaxLayer = L.softmax({axis: -1, name: 'softmax_layer'}).apply(leaky);
  const tanh = L.activation({activation: 'tanh', name: 'act_tanh'}).apply(relu6);
  const lin = L.activation({activation: 'linear', name: 'act_linear'}).apply(relu6);
  const cat = L.concatenate({axis: 1, name: 'pooled'}).apply([gap, gmp, gmp2]);
  const many = L.concatenate({axis: 3, name: 'many'}).apply([softmax, softmaxLayer, tanh, lin]);
  return tf.model({inputs: x, outputs: [cat, many, apv], name: 'merge_pool'});
}

// Sequential: Flatten/Reshape to and from rank 4, Dense on rank 2, 3 and 4,
// Dropout, a 1x1 pooled flatten, the remaining activations.
function sequentialModel() {
  return tf.sequential({
    name: 'seq',
    layers: [
      L.conv2d({inputShape: [6, 6, 2], filters: 3, kernelSize: 3, padding: 'same', name: 'conv'}),
      L.dense({units: 4, activation: 'relu', name: 'dense_image'}),
      L.flatten({name: 'flat'}),
      L.dense({units: 12, activation: 'sigmoid', name: 'd1'}),
      L.dropout({rate: 0.3, name: 'drop'}),
      L.reshape({targetShape: [2, 2, 3], name: 'to_image'}),
      L.conv2d({filters: 4, kernelSize: 2, padding: 'same', activation: 'tanh', name: 'conv2'}),
      L.maxPooling2d({poolSize: 2, name: 'pool'}),
      L.flatten({name: 'flat_1x1'}),
      L.reshape({targetShape: [2, 2], name: 'to_rank3'}),
      L.dense({units: 3, activation: 'hardSigmoid', name: 'dense_rank3'}),
      L.dense({units: 5, useBias: false, name: 'dense_rank3_nobias'}),
      L.flatten({name: 'flat2'}),
      L.dense({units: 4, activation: 'softmax', name: 'probs'}),
    ],
  });
}

// Nested models as Teachable Machine writes them: a Sequential holding a
// Functional trunk and a Sequential head, inside a Functional model that also
// calls a plain layer and a nested model twice each.
function nestedModel() {
  const ti = tf.input({shape: [8, 8, 3], name: 'trunk_in'});
  const t1 = L.conv2d({filters: 4, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu', name: 'trunk_conv'}).apply(ti);
  const t2 = L.globalAveragePooling2d({name: 'trunk_pool'}).apply(t1);
  const trunk = tf.model({inputs: ti, outputs: t2, name: 'trunk'});
  const head = tf.sequential({name: 'head', layers: [
    L.dense({inputShape: [4], units: 6, activation: 'relu', name: 'head_dense'}),
    L.dense({units: 3, activation: 'softmax', name: 'head_probs'}),
  ]});
  const inner = tf.sequential({name: 'tm_model', layers: [trunk, head]});
  const proj = tf.sequential({name: 'proj', layers: [
    L.dense({inputShape: [4], units: 2, activation: 'tanh', name: 'proj_dense'}),
  ]});
  const x = tf.input({shape: [8, 8, 3], name: 'picture'});
  const probs = inner.apply(x);
  const widen = L.dense({units: 4, name: 'widen'}).apply(probs);
  const feats = L.globalMaxPooling2d({name: 'outer_pool'}).apply(
      L.conv2d({filters: 4, kernelSize: 1, name: 'outer_conv'}).apply(x));
  const shared = L.dense({units: 4, name: 'shared'});
  const s1 = shared.apply(widen), s2 = shared.apply(feats);
  const both = L.add({name: 'both'}).apply([proj.apply(s1), proj.apply(s2)]);
  return tf.model({inputs: x, outputs: [probs, both], name: 'outer'});
}

// Rescaling first: the model expects 0..255.
function rescalingModel() {
  return tf.sequential({name: 'rescaled', layers: [
    tf.layers.rescaling({inputShape: [6, 6, 3], scale: 1 / 127.5, offset: -1, name: 'rescale'}),
    L.conv2d({filters: 4, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu6', name: 'conv'}),
    L.globalAveragePooling2d({name: 'gap'}),
    L.dense({units: 3, name: 'logits'}),
  ]});
}

// Keras settings the TF.js layers ignore: ReLU's negative_slope and
// threshold, a dilated DepthwiseConv2D. The reference applies Keras' semantics with TF.js
// ops to the values TF.js computes.
function kerasOnlyModel() {
  const x = tf.input({shape: [7, 7, 2], name: 'x'});
  const c = L.conv2d({filters: 3, kernelSize: 1, name: 'c'}).apply(x);
  const r1 = L.reLU({maxValue: 0.4, name: 'slope_max'}).apply(c);
  const r2 = L.reLU({name: 'slope'}).apply(c);
  const r3 = L.reLU({maxValue: 0.5, name: 'threshold_max'}).apply(c);
  const r4 = L.reLU({name: 'threshold'}).apply(c);
  const dw = L.depthwiseConv2d({kernelSize: 3, dilationRate: 2, depthMultiplier: 2, padding: 'same', name: 'dilated_dw'}).apply(c);
  return tf.model({inputs: x, outputs: [r1, r2, r3, r4, dw], name: 'keras_only'});
}

function patchKerasOnly(topology) {
  for (const l of topology.config.layers) {
    if (l.name === 'slope_max') Object.assign(l.config, {negative_slope: 0.1, threshold: 0});
    if (l.name === 'slope') Object.assign(l.config, {negative_slope: 0.25, threshold: 0});
    if (l.name === 'threshold_max') Object.assign(l.config, {negative_slope: 0.2, threshold: 0.1});
    if (l.name === 'threshold') Object.assign(l.config, {negative_slope: 0, threshold: -0.2});
  }
}

function kerasOnlyReference(model, inputs) {
  const c = tf.model({inputs: model.inputs, outputs: model.getLayer('c').output}).predict(inputs);
  // keras.backend.relu(x, alpha=slope, max_value=max, threshold=t)
  const relu = (x, slope, max, t) => {
    let pos = t !== 0 ? tf.mul(x, tf.cast(tf.greater(x, t), 'float32')) : tf.relu(x);
    if (max != null) pos = tf.clipByValue(pos, 0, max);
    return tf.sub(pos, tf.mul(slope, tf.relu(tf.sub(t, x))));
  };
  const [kernel, bias] = model.getLayer('dilated_dw').getWeights();
  const dw = tf.add(tf.depthwiseConv2d(c, kernel, 1, 'same', 'NHWC', [2, 2]), bias);
  return [relu(c, 0.1, 0.4, 0), relu(c, 0.25, null, 0), relu(c, 0.2, 0.5, 0.1),
          relu(c, 0, null, -0.2), dw];
}

// --- nsfwjs on real photos -----------------------------------------------------------

// Decodes an 8-bit, non-interlaced PNG (gray, RGB, gray+alpha or RGBA) to RGBA.
function decodePng(file) {
  const buf = fs.readFileSync(file);
  let pos = 8, width, height, depth, type, interlace;
  const idat = [];
  while (pos < buf.length) {
    const len = buf.readUInt32BE(pos), kind = buf.toString('latin1', pos + 4, pos + 8);
    const body = buf.subarray(pos + 8, pos + 8 + len);
    if (kind === 'IHDR') {
      width = body.readUInt32BE(0), height = body.readUInt32BE(4);
      depth = body[8], type = body[9], interlace = body[12];
    } else if (kind === 'IDAT') {
      idat.push(body);
    }
    pos += 12 + len;
  }
  const channels = {0: 1, 2: 3, 4: 2, 6: 4}[type];
  if (depth !== 8 || interlace !== 0 || !channels) throw new Error(`${file}: unsupported PNG`);
  const raw = zlib.inflateSync(Buffer.concat(idat));
  const stride = width * channels, px = Buffer.alloc(height * stride);
  for (let y = 0; y < height; ++y) {
    const filter = raw[y * (stride + 1)];
    for (let x = 0; x < stride; ++x) {
      const v = raw[y * (stride + 1) + 1 + x];
      const a = x >= channels ? px[y * stride + x - channels] : 0;
      const b = y > 0 ? px[(y - 1) * stride + x] : 0;
      const c = x >= channels && y > 0 ? px[(y - 1) * stride + x - channels] : 0;
      let pred = 0;
      if (filter === 1) pred = a;
      else if (filter === 2) pred = b;
      else if (filter === 3) pred = (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
        pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      px[y * stride + x] = (v + pred) & 0xff;
    }
  }
  const rgba = new Uint8Array(width * height * 4);
  for (let i = 0; i < width * height; ++i) {
    const s = px.subarray(i * channels, (i + 1) * channels);
    const [r, g, b2, al] = channels === 1 ? [s[0], s[0], s[0], 255]
                         : channels === 2 ? [s[0], s[0], s[0], s[1]]
                         : channels === 3 ? [s[0], s[1], s[2], 255] : [s[0], s[1], s[2], s[3]];
    rgba.set([r, g, b2, al], i * 4);
  }
  return {width, height, rgba};
}

// RGBA on white, centred on a white square, resized to 224x224, in 0..1.
function photoTensor(file) {
  const {width, height, rgba} = decodePng(file);
  const side = Math.max(width, height);
  const square = new Float32Array(side * side * 3).fill(255);
  const ox = (side - width) >> 1, oy = (side - height) >> 1;
  for (let y = 0; y < height; ++y)
    for (let x = 0; x < width; ++x) {
      const i = (y * width + x) * 4, o = ((y + oy) * side + x + ox) * 3, a = rgba[i + 3] / 255;
      for (let k = 0; k < 3; ++k) square[o + k] = a * rgba[i + k] + (1 - a) * 255;
    }
  return tf.tidy(() => tf.image.resizeBilinear(tf.tensor(square, [1, side, side, 3]), [224, 224])
                           .div(255));
}

async function nsfwjsFixture() {
  if (!fs.existsSync(path.join(NSFWJS, 'model.json'))) {
    console.log(`skipping nsfwjs: ${NSFWJS} does not exist (run scripts/fetch_nsfwjs.sh)`);
    return;
  }
  if (!fs.existsSync(STAMPS)) throw new Error(`${STAMPS} missing: apt-get install tuxpaint-stamps-default`);
  const model = await readModel(NSFWJS);
  const dir = path.join(OUT, 'nsfwjs');
  fs.rmSync(dir, {recursive: true, force: true});
  fs.mkdirSync(dir, {recursive: true});
  const input = tf.concat(PHOTOS.map(p => photoTensor(path.join(STAMPS, p))));
  const names = ['block_10_project_BN', 'average_pooling2d_1', model.outputLayers[0].name];
  const probe = tf.model({inputs: model.inputs, outputs: names.map(n => model.getLayer(n).output)});
  const outs = probe.predict(input);
  saveTensor(path.join(dir, `in.${model.inputLayers[0].name}.npy`), input);
  names.forEach((n, i) => saveTensor(path.join(dir, `out.${n}.npy`), outs[i]));
  fs.writeFileSync(path.join(dir, 'photos.txt'), PHOTOS.map(p => `${STAMPS}/${p}\n`).join(''));
  console.log(`nsfwjs: ${PHOTOS.length} photos, probabilities`, outs[2].arraySync());
}

async function main() {
  await tf.setBackend('cpu');
  await fixture('convs', convModel(), {seed: 1});
  await fixture('merge_pool', mergePoolModel(), {seed: 2});
  await fixture('sequential', sequentialModel(), {seed: 3, groups: 2, shards: 2});
  await fixture('nested', nestedModel(), {seed: 4});
  await fixture('rescaling', rescalingModel(), {seed: 5, inputScale: 255});
  await fixture('keras_only', kerasOnlyModel(),
                {seed: 6, patch: patchKerasOnly, reference: kerasOnlyReference});
  // The conv model again with quantized weights: uint8 kernels, uint16 the rest.
  await fixture('quantized', convModel(),
                {seed: 1, storage: n => (/kernel/.test(n) ? 'uint8' : 'uint16')});
  await fixture('float16', mergePoolModel(), {seed: 2, storage: () => 'float16', shards: 3});
  await nsfwjsFixture();
}

main().catch(e => {
  console.error(e);
  process.exit(1);
});
