/**
 * expandJob: the command line and environment of each pod of an Indexed Job, as Kubernetes
 * computes them (variable references, the completion index, Secrets), on small Jobs made here
 * and on the real deploy/kubernetes Jobs.
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- Kubernetes manifests are untyped YAML walked by key name */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { expandJob, expandPod, expandReferences, ExpandError, parseQuantity } from './expand-job.js';
import { loadManifests, MANIFEST_DIR } from './manifest-checks.js';

type Json = Record<string, any>;

function job(container: Json, spec: Json = {}): Json {
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: 'shards' },
    spec: {
      completionMode: 'Indexed',
      completions: 4,
      parallelism: 4,
      ...spec,
      template: { metadata: { labels: { app: 'x' } }, spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'img:1', ...container }] } },
    },
  };
}

describe('expandReferences: Kubernetes $(VAR) expansion', () => {
  const vars: Record<string, string> = { A: 'alpha', B: 'beta', EMPTY: '' };
  const lookup = (name: string): string | undefined => vars[name];
  const cases: [string, string][] = [
    ['$(A)', 'alpha'],
    ['x$(A)y$(B)z', 'xalphaybetaz'],
    ['$(EMPTY)|', '|'],
    ['$(NOPE)', '$(NOPE)'], // unknown: kept as written
    ['$$(A)', '$(A)'], // escaped
    ['$$$(A)', '$alpha'],
    ['$$', '$'],
    ['$', '$'], // a lone $ at the end
    ['a$b', 'a$b'], // not a reference
    ['$(A', '$(A'], // unclosed
    ['$(A)$(', 'alpha$('],
    ['${A}', '${A}'], // shell syntax means nothing here
    ['$()', '$()'], // empty name: no such variable
    ['ż$(A)ż', 'żalphaż'],
  ];
  for (const [input, expected] of cases) {
    test(JSON.stringify(input), () => assert.equal(expandReferences(input, lookup), expected));
  }
});

describe('expandJob', () => {
  test('each index gets its own JOB_COMPLETION_INDEX in the args', () => {
    const j = job({ args: ['migrate', 'postgres', '--shard', '$(JOB_COMPLETION_INDEX)/4'] });
    for (let index = 0; index < 4; index++) {
      const pod = expandJob(j, index);
      assert.deepEqual(pod.args, ['migrate', 'postgres', '--shard', `${index}/4`]);
      assert.equal(pod.env.JOB_COMPLETION_INDEX, String(index));
      assert.equal(pod.command, null);
      assert.equal(pod.image, 'img:1');
    }
  });

  test('command and args both expand; workingDir does not', () => {
    const pod = expandJob(job({ command: ['run', '$(JOB_COMPLETION_INDEX)'], args: ['$(JOB_COMPLETION_INDEX)'], workingDir: '/w/$(JOB_COMPLETION_INDEX)' }), 2);
    assert.deepEqual(pod.command, ['run', '2']);
    assert.deepEqual(pod.args, ['2']);
    assert.equal(pod.workingDir, '/w/$(JOB_COMPLETION_INDEX)');
  });

  test('env values see only the variables defined before them; the index comes last', () => {
    const pod = expandJob(
      job({
        env: [
          { name: 'LATER_REF', value: '$(FIRST)' },
          { name: 'FIRST', value: 'one' },
          { name: 'SECOND', value: '$(FIRST)-two' },
          { name: 'SHARD', value: '$(JOB_COMPLETION_INDEX)/4' },
          { name: 'BLANK', value: '' },
        ],
        args: ['$(SECOND)', '$(LATER_REF)', '$(SHARD)', '$(BLANK)'],
      }),
      1,
    );
    assert.equal(pod.env.LATER_REF, '$(FIRST)');
    assert.equal(pod.env.SECOND, 'one-two');
    // The Job controller appends JOB_COMPLETION_INDEX after the container's own env: not visible to them.
    assert.equal(pod.env.SHARD, '$(JOB_COMPLETION_INDEX)/4');
    assert.equal(pod.env.BLANK, '');
    // Args are expanded once, with the final environment: a reference inside a value is not expanded again.
    assert.deepEqual(pod.args, ['one-two', '$(FIRST)', '$(JOB_COMPLETION_INDEX)/4', '']);
  });

  test('a container that defines JOB_COMPLETION_INDEX itself keeps its own', () => {
    const pod = expandJob(job({ env: [{ name: 'JOB_COMPLETION_INDEX', value: '7' }], args: ['$(JOB_COMPLETION_INDEX)'] }), 0);
    assert.deepEqual(pod.args, ['7']);
  });

  test('a NonIndexed Job has no completion index', () => {
    const pod = expandJob(job({ args: ['$(JOB_COMPLETION_INDEX)'] }, { completionMode: 'NonIndexed' }), 0);
    assert.deepEqual(pod.args, ['$(JOB_COMPLETION_INDEX)']);
    assert.equal(pod.env.JOB_COMPLETION_INDEX, undefined);
  });

  test('fieldRef: namespace, pod name, labels and annotations (the index annotation too)', () => {
    const fields = [
      'metadata.namespace',
      'metadata.name',
      "metadata.labels['app']",
      "metadata.annotations['batch.kubernetes.io/job-completion-index']",
      "metadata.labels['missing']",
    ];
    const pod = expandJob(job({ env: fields.map((fieldPath, i) => ({ name: `F${i}`, valueFrom: { fieldRef: { fieldPath } } })) }), 3, { namespace: 'mim' });
    assert.deepEqual([pod.env.F0, pod.env.F1, pod.env.F2, pod.env.F3, pod.env.F4], ['mim', 'shards-3', 'x', '3', '']);
    assert.equal(expandJob(job({ env: [{ name: 'NS', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } }] }), 0).env.NS, 'default');
    assert.throws(() => expandJob(job({ env: [{ name: 'IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } }] }), 0), ExpandError);
  });

  test('secretKeyRef and envFrom come from the given map; a missing one stops the pod unless optional', () => {
    const secrets = { db: { url: 'postgres://u:p@db/mim', password: 'pw' } };
    const pod = expandJob(
      job({
        envFrom: [{ secretRef: { name: 'db' }, prefix: 'DB_' }],
        env: [
          { name: 'URL', valueFrom: { secretKeyRef: { name: 'db', key: 'url' } } },
          { name: 'MAYBE', valueFrom: { secretKeyRef: { name: 'db', key: 'nope', optional: true } } },
          { name: 'DB_password', value: 'overridden' },
        ],
        args: ['$(URL)', '$(DB_url)', '$(MAYBE)'],
      }),
      0,
      { secrets },
    );
    assert.equal(pod.env.URL, 'postgres://u:p@db/mim');
    assert.equal(pod.env.DB_url, 'postgres://u:p@db/mim');
    assert.equal(pod.env.DB_password, 'overridden');
    assert.equal('MAYBE' in pod.env, false);
    assert.deepEqual(pod.args, ['postgres://u:p@db/mim', 'postgres://u:p@db/mim', '$(MAYBE)']);
    assert.throws(
      () => expandJob(job({ env: [{ name: 'URL', valueFrom: { secretKeyRef: { name: 'db', key: 'uri' } } }] }), 0, { secrets }),
      /key 'uri' of Secret 'db' not found: the pod would not start/,
    );
    assert.throws(() => expandJob(job({ envFrom: [{ secretRef: { name: 'other' } }] }), 0, { secrets }), /Secret 'other' not found/);
    assert.doesNotThrow(() => expandJob(job({ envFrom: [{ secretRef: { name: 'other', optional: true } }] }), 0, { secrets }));
  });

  test('resourceFieldRef: CPU rounded up by the divisor, memory in bytes', () => {
    const pod = expandJob(
      job({
        resources: { limits: { cpu: '1500m', memory: '1Gi' }, requests: { cpu: '250m' } },
        env: [
          { name: 'CPUS', valueFrom: { resourceFieldRef: { resource: 'limits.cpu', divisor: '1' } } },
          { name: 'MILLI', valueFrom: { resourceFieldRef: { resource: 'requests.cpu', divisor: '1m' } } },
          { name: 'MEM_MI', valueFrom: { resourceFieldRef: { resource: 'limits.memory', divisor: '1Mi' } } },
        ],
      }),
      0,
    );
    assert.deepEqual([pod.env.CPUS, pod.env.MILLI, pod.env.MEM_MI], ['2', '250', '1024']);
    assert.equal(parseQuantity('2'), 2);
    assert.equal(parseQuantity('512Mi'), 512 * 2 ** 20);
    assert.equal(parseQuantity('1e3'), 1000);
    assert.throws(() => parseQuantity('lots'), ExpandError);
  });

  test('an index outside the Job, a non-Job, several containers unnamed', () => {
    assert.throws(() => expandJob(job({}), 4), /outside the Job's completions \(0\.\.3\)/);
    assert.throws(() => expandJob(job({}), -1), ExpandError);
    assert.throws(() => expandJob({ apiVersion: 'apps/v1', kind: 'Deployment' }, 0), /not a batch\/v1 Job/);
    const two = job({});
    two.spec.template.spec.containers.push({ name: 'other', args: ['$(JOB_COMPLETION_INDEX)'] });
    assert.throws(() => expandJob(two, 0), /2 containers/);
    assert.deepEqual(expandJob(two, 1, { container: 'other' }).args, ['1']);
  });
});

describe('expandJob on deploy/kubernetes', () => {
  const docs = loadManifests(MANIFEST_DIR);
  const jobs = docs.filter((d) => d.doc.kind === 'Job');
  const secrets = { 'mim-sender-jid-db': { url: 'postgres://mim:secret@127.0.0.1:5432/mongooseim', password: 'secret' } };

  test('the PostgreSQL Job: four shards, the URL from the Secret, the sidecars by DNS', () => {
    const postgres = jobs.find((d) => d.file === join('deploy/kubernetes', 'migrate-postgres-job.yaml'));
    assert.ok(postgres);
    const pods = [0, 1, 2, 3].map((index) => expandJob(postgres.doc, index, { namespace: 'mim', secrets }));
    pods.forEach((pod, index) => {
      assert.deepEqual(pod.args, [
        'migrate',
        'postgres',
        '--shard',
        `${index}/4`,
        '--sidecar',
        'dns:///mim-sender-jid-sidecar.mim.svc.cluster.local:50051',
        '--progress-interval',
        '60',
      ]);
      assert.equal(pod.env.MIM_SENDER_JID_DB_URL, 'postgres://mim:secret@127.0.0.1:5432/mongooseim');
      assert.equal(pod.env.JOB_COMPLETION_INDEX, String(index));
      assert.equal(pod.workingDir, '/data');
    });
    assert.throws(() => expandJob(postgres.doc, 0, { namespace: 'mim' }), /Secret 'mim-sender-jid-db' not found/);
  });

  test('every Job: no reference left unexpanded, shards 0..N-1 each once', () => {
    for (const d of jobs) {
      const n: number = d.doc.spec.completions;
      const shards = new Set<string>();
      for (let index = 0; index < n; index++) {
        const pod = expandJob(d.doc, index, { namespace: 'mim', secrets });
        for (const arg of pod.args) assert.doesNotMatch(arg, /\$\(/, `${d.file} pod ${index}: ${arg}`);
        shards.add(pod.args[pod.args.indexOf('--shard') + 1]);
      }
      assert.deepEqual([...shards].sort(), Array.from({ length: n }, (_, k) => `${k}/${n}`).sort(), d.file);
    }
  });

  test('the sidecar Deployment: its pool size from its CPU limit', () => {
    const sidecar = docs.find((d) => d.doc.kind === 'Deployment');
    assert.ok(sidecar);
    const pod = expandPod(sidecar.doc.spec.template, { namespace: 'mim' });
    assert.equal(pod.env.MIM_SENDER_JID_POOL_SIZE, String(Math.ceil(parseQuantity(sidecar.doc.spec.template.spec.containers[0].resources.limits.cpu))));
    assert.equal(pod.args[0], 'serve');
  });
});
