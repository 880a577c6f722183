// Drives a whole MLflow run lifecycle against a running kiln server with the npm `mlflow` client
// (2.0.7, written by others). Usage: KILN_URL=http://127.0.0.1:PORT node mlflow-lifecycle.js
// Prints "LIFECYCLE OK" and exits 0 when every step behaved as MLflow would.
// Against a server with access control, credentials come the way MLflow's clients take them: MLFLOW_TRACKING_TOKEN
// (bearer) or MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD (basic), passed to the client as its headers.
'use strict';
const assert = require('node:assert/strict');
const MLflow = require('mlflow');

const endpoint = process.env.KILN_URL;
if (!endpoint) throw new Error('KILN_URL is not set');
const headers = {};
if (process.env.MLFLOW_TRACKING_TOKEN) {
  headers.Authorization = `Bearer ${process.env.MLFLOW_TRACKING_TOKEN}`;
} else if (process.env.MLFLOW_TRACKING_USERNAME) {
  const pair = `${process.env.MLFLOW_TRACKING_USERNAME}:${process.env.MLFLOW_TRACKING_PASSWORD || ''}`;
  headers.Authorization = `Basic ${Buffer.from(pair).toString('base64')}`;
}
const { Experiments, Runs, Metrics, Artifacts } = new MLflow({ endpoint, headers });

// The client logs every request body; keep stdout for our own lines.
const log = (...a) => process.stderr.write(a.join(' ') + '\n');
console.log = () => {};

function errorOf(e) {
  // The client throws Error(Error(JSON.stringify({status, statusText, data}))).
  const text = String(e.message).replace(/^Error: /, '');
  return JSON.parse(text);
}

(async () => {
  if (headers.Authorization) {
    // The same client without credentials, and with a wrong token, is refused with MLflow's UNAUTHENTICATED.
    for (const bad of [{}, { Authorization: 'Bearer kiln_wrong' }]) {
      await assert.rejects(new MLflow({ endpoint, headers: bad }).Experiments.list(), (e) => {
        const err = errorOf(e);
        assert.equal(err.status, 401);
        assert.equal(err.data.error_code, 'UNAUTHENTICATED');
        return true;
      });
    }
  }
  const name = `npm-lifecycle-${Date.now()}`;
  const { experiment_id } = await Experiments.create({ name });
  assert.match(experiment_id, /^\d+$/);

  const { experiments } = await Experiments.list();
  assert.ok(experiments.some((e) => e.experiment_id === experiment_id && e.name === name), 'experiments/list shows the new experiment');
  const { experiment } = await Experiments.get({ experiment_id });
  assert.equal(experiment.name, name);
  assert.equal(experiment.lifecycle_stage, 'active');
  await Experiments.setExperimentTag({ experiment_id, key: 'team', value: 'risk' });
  await Experiments.update({ experiment_id, new_name: name + '-renamed' });
  assert.equal((await Experiments.get({ experiment_id })).experiment.name, name + '-renamed');

  const started = Date.now();
  const { run } = await Runs.create({ experiment_id, user_id: 'ada', start_time: started, tags: [{ key: 'source', value: 'npm' }] });
  const run_id = run.info.run_id;
  assert.equal(run.info.status, 'RUNNING');
  assert.equal(run.info.start_time, started);

  await Runs.logParameter({ run_id, key: 'lr', value: '0.1' });
  await Runs.logMetric({ run_id, key: 'loss', value: 0.9, timestamp: started + 1, step: 0 });
  await Runs.logMetric({ run_id, key: 'loss', value: 0.5, timestamp: started + 2, step: 1 });
  await Runs.logBatch({
    run_id,
    metrics: [
      { key: 'loss', value: 0.2, timestamp: started + 3, step: 2 },
      { key: 'auc', value: 0.8, timestamp: started + 3, step: 2 },
    ],
    params: [{ key: 'trees', value: '100' }],
    tags: [{ key: 'stage', value: 'dev' }],
  });
  await Runs.setTag({ run_id, key: 'owner', value: 'ada' });
  await Runs.deleteTag({ run_id, key: 'owner' });

  // Params are immutable: a different value is MLflow's INVALID_PARAMETER_VALUE, status 400.
  await assert.rejects(Runs.logParameter({ run_id, key: 'lr', value: '0.2' }), (e) => {
    const err = errorOf(e);
    assert.equal(err.status, 400);
    assert.equal(err.data.error_code, 'INVALID_PARAMETER_VALUE');
    return true;
  });

  const { runs } = await Runs.search({
    experiment_ids: [experiment_id],
    filter: "metrics.auc > 0.5 AND params.lr = '0.1' AND tags.stage = 'dev'",
    order_by: ['metrics.loss ASC'],
    max_results: 10,
  });
  assert.equal(runs.length, 1);
  assert.equal(runs[0].info.run_id, run_id);
  const none = await Runs.search({ experiment_ids: [experiment_id], filter: 'metrics.auc > 0.9' });
  assert.ok(!none.runs || none.runs.length === 0);

  const { metrics } = await Metrics.getHistory({ run_id, metric_key: 'loss' });
  assert.deepEqual(metrics.map((m) => [m.step, m.value]), [[0, 0.9], [1, 0.5], [2, 0.2]]);

  // Upload through the artifact proxy (the npm client has no upload call), then list with the client.
  const root = run.info.artifact_uri.replace(/^mlflow-artifacts:\//, '');
  const put = await fetch(`${endpoint}/api/2.0/mlflow-artifacts/artifacts/${root}/model/kiln.json`, { method: 'PUT', body: '{"format_version":1}', headers });
  assert.equal(put.status, 200);
  const top = await Artifacts.list({ run_id });
  assert.deepEqual(top.files.map((f) => [f.path, f.is_dir]), [['model', true]]);
  const inner = await Artifacts.list({ run_id, path: 'model' });
  assert.deepEqual(inner.files.map((f) => [f.path, f.file_size]), [['model/kiln.json', 20]]);

  await Runs.update({ run_id, status: 'FINISHED', end_time: started + 10 });
  const got = (await Runs.get({ run_id })).run;
  assert.equal(got.info.status, 'FINISHED');
  assert.equal(got.info.end_time, started + 10);
  const byKey = (xs) => Object.fromEntries((xs || []).map((x) => [x.key, x.value]));
  assert.deepEqual(byKey(got.data.params), { lr: '0.1', trees: '100' });
  assert.equal(byKey(got.data.metrics).loss, 0.2);
  assert.equal(byKey(got.data.tags).stage, 'dev');
  assert.equal(byKey(got.data.tags).source, 'npm');
  assert.equal(byKey(got.data.tags).owner, undefined);

  await Runs.delete({ run_id });
  assert.equal((await Runs.get({ run_id })).run.info.lifecycle_stage, 'deleted');
  await Runs.restore({ run_id });

  await assert.rejects(Experiments.get({ experiment_id: '987654321' }), (e) => {
    const err = errorOf(e);
    assert.equal(err.status, 404);
    assert.equal(err.data.error_code, 'RESOURCE_DOES_NOT_EXIST');
    return true;
  });

  await Experiments.delete({ experiment_id });
  const active = await Experiments.list({ view_type: 'ACTIVE_ONLY' });
  assert.ok(!active.experiments.some((e) => e.experiment_id === experiment_id));
  await Experiments.restore({ experiment_id });

  process.stdout.write(`LIFECYCLE OK ${run_id}\n`);
})().catch((e) => {
  log('FAILED:', e && e.stack ? e.stack : e);
  process.exit(1);
});
