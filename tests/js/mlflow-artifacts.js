// Logs artifacts of a run through a kiln server's artifact proxy and reads them back, with the npm `mlflow` client
// (2.0.7, written by others) for the run and the listings. Usage: KILN_URL=http://127.0.0.1:PORT node mlflow-artifacts.js
// Prints "ARTIFACTS OK RUN_ID ROOT" and exits 0 when every step behaved as MLflow's proxy would.
'use strict';
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const MLflow = require('mlflow');

const endpoint = process.env.KILN_URL;
if (!endpoint) throw new Error('KILN_URL is not set');
const { Experiments, Runs, Artifacts } = new MLflow({ endpoint });
console.log = () => {};
const out = (line) => process.stdout.write(line + '\n');

const sha = (buf) => crypto.createHash('sha256').update(buf).digest('hex');

(async () => {
  const { experiment_id } = await Experiments.create({ name: `npm-artifacts-${Date.now()}` });
  const { run } = await Runs.create({ experiment_id, start_time: Date.now() });
  const run_id = run.info.run_id;
  const root = run.info.artifact_uri.replace(/^mlflow-artifacts:\//, '');
  const proxy = `${endpoint}/api/2.0/mlflow-artifacts/artifacts/${root}`;

  // 20 MB of bytes that are not all alike (past the server's multipart threshold), a small file and a nested one.
  const weights = crypto.randomBytes(20 * 1024 * 1024);
  const manifest = Buffer.from('{"format_version":1}');
  for (const [path, body] of [['model/weights.bin', weights], ['model/kiln.json', manifest], ['notes.txt', Buffer.from('hello')]]) {
    const put = await fetch(`${proxy}/${path}`, { method: 'PUT', body });
    assert.equal(put.status, 200, `PUT ${path}: ${await put.text()}`);
  }

  const top = await Artifacts.list({ run_id });
  assert.deepEqual(top.files.map((f) => [f.path, f.is_dir]), [['model', true], ['notes.txt', false]]);
  const inner = await Artifacts.list({ run_id, path: 'model' });
  assert.deepEqual(inner.files.map((f) => [f.path, Number(f.file_size)]), [['model/kiln.json', manifest.length], ['model/weights.bin', weights.length]]);

  // The proxy's own listing, names relative to the directory asked for.
  const listed = await (await fetch(`${endpoint}/api/2.0/mlflow-artifacts/artifacts?path=${root}/model`)).json();
  assert.deepEqual(listed.files.map((f) => f.path), ['kiln.json', 'weights.bin']);

  for (const [path, body] of [['model/weights.bin', weights], ['model/kiln.json', manifest]]) {
    const got = await fetch(`${proxy}/${path}`);
    assert.equal(got.status, 200);
    assert.equal(sha(Buffer.from(await got.arrayBuffer())), sha(body), `${path} comes back byte for byte`);
  }

  // Mistakes are the caller's, told in MLflow's shape: paths that climb out, and a file that is not there.
  // (fetch folds "%2E%2E" segments itself, so the climbing upload uses encoded backslashes, which it leaves alone.)
  const escape = await fetch(`${proxy}/model/..%5C..%5C..%5Cescape.txt`, { method: 'PUT', body: 'x' });
  assert.equal(escape.status, 400);
  assert.equal((await escape.json()).error_code, 'INVALID_PARAMETER_VALUE');
  await assert.rejects(Artifacts.list({ run_id, path: '../../..' }), (e) => {
    const err = JSON.parse(String(e.message).replace(/^Error: /, ''));
    assert.equal(err.status, 400);
    assert.equal(err.data.error_code, 'INVALID_PARAMETER_VALUE');
    return true;
  });
  const missing = await fetch(`${proxy}/model/absent.bin`);
  assert.equal(missing.status, 404);
  assert.equal((await missing.json()).error_code, 'RESOURCE_DOES_NOT_EXIST');

  out(`ARTIFACTS OK ${run_id} ${root}`);
})().catch((e) => {
  process.stderr.write(`${e.stack || e}\n`);
  process.exit(1);
});
