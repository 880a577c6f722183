// Calls a Kiln server's inference.GRPCInferenceService with @grpc/grpc-js, loading the public
// Open Inference Protocol proto with @grpc/proto-loader. Prints one JSON object of what it saw.
// usage: node grpc_v2_client.js PROTO HOST:PORT MODEL
'use strict';
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const [protoPath, target, model] = process.argv.slice(2);
const definition = protoLoader.loadSync(protoPath, { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
const inference = grpc.loadPackageDefinition(definition).inference;
const client = new inference.GRPCInferenceService(target, grpc.credentials.createInsecure());

const call = (method, request) => new Promise((resolve, reject) =>
  client[method](request, { deadline: Date.now() + 20000 }, (err, response) => (err ? reject(err) : resolve(response))));

const inferRequest = (merchant) => ({
  model_name: model,
  id: 'js-1',
  inputs: [
    { name: 'amount', datatype: 'FP32', shape: [1], contents: { fp32_contents: [420.5] } },
    { name: 'hour', datatype: 'INT32', shape: [1], contents: { int_contents: [3] } },
    { name: 'merchant', datatype: 'BYTES', shape: [1], contents: { bytes_contents: [Buffer.from(merchant)] } },
  ],
});

// The same row in raw_input_contents: little-endian values in each input's datatype, BYTES as a
// 4-byte little-endian length and then the bytes; the inputs themselves carry no contents.
const rawInferRequest = (amountBytes) => {
  const amount = Buffer.alloc(4); amount.writeFloatLE(420.5);
  const hour = Buffer.alloc(4); hour.writeInt32LE(3);
  const merchant = Buffer.from('online');
  const merchantLength = Buffer.alloc(4); merchantLength.writeUInt32LE(merchant.length);
  return {
    model_name: model,
    id: 'js-raw',
    inputs: [
      { name: 'amount', datatype: 'FP32', shape: [1] },
      { name: 'hour', datatype: 'INT32', shape: [1] },
      { name: 'merchant', datatype: 'BYTES', shape: [1] },
    ],
    raw_input_contents: [amountBytes ? amount.subarray(0, amountBytes) : amount, hour, Buffer.concat([merchantLength, merchant])],
  };
};

(async () => {
  const live = await call('ServerLive', {});
  const metadata = await call('ModelMetadata', { name: model });
  const response = await call('ModelInfer', inferRequest('online'));
  const probability = response.outputs.find((o) => o.name === 'probability');
  const prediction = response.outputs.find((o) => o.name === 'prediction');
  let badRequestCode = null;
  try {
    await call('ModelInfer', inferRequest('casino'));
  } catch (err) {
    badRequestCode = Object.keys(grpc.status).find((k) => grpc.status[k] === err.code);
  }
  const raw = await call('ModelInfer', rawInferRequest());
  let rawBadCode = null;
  let rawBadMessage = null;
  try {
    await call('ModelInfer', rawInferRequest(3)); // 3 bytes where shape [1] of FP32 needs 4
  } catch (err) {
    rawBadCode = Object.keys(grpc.status).find((k) => grpc.status[k] === err.code);
    rawBadMessage = err.details;
  }
  process.stdout.write(JSON.stringify({
    raw_probability: raw.outputs.find((o) => o.name === 'probability').contents.fp64_contents[0],
    raw_prediction: raw.outputs.find((o) => o.name === 'prediction').contents.bytes_contents[0].toString('utf8'),
    raw_bad_code: rawBadCode,
    raw_bad_message: rawBadMessage,
    live: live.live,
    metadata_name: metadata.name,
    inputs: metadata.inputs.map((i) => i.name),
    outputs: metadata.outputs.map((o) => o.name),
    model_name: response.model_name,
    model_version: response.model_version,
    id: response.id,
    prediction: prediction.contents.bytes_contents[0].toString('utf8'),
    probability: probability.contents.fp64_contents[0],
    bad_request_code: badRequestCode,
  }));
  client.close();
})().catch((err) => {
  process.stderr.write(`grpc client failed: ${err.message}\n`);
  process.exit(1);
});
