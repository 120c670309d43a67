/**
 * deploy/kubernetes/, checked offline (no cluster runs here): every document against the
 * Kubernetes schemas and field names, and against what the project needs of it, the
 * flags of the Jobs read by the built CLI's own parsers. Then the same checks on broken copies,
 * so that a check that stopped catching anything fails here too.
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- Kubernetes manifests are untyped YAML walked by key name */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import {
  allProblems,
  cliFacts,
  fieldNameProblems,
  loadManifests,
  propertyProblems,
  schemaProblems,
  shardCountOf,
  type CliFacts,
  type ManifestDoc,
} from './manifest-checks.js';

type Json = Record<string, any>;

let docs: ManifestDoc[];
let facts: CliFacts;

before(async () => {
  docs = loadManifests();
  facts = await cliFacts();
});

const show = (problems: readonly string[]): string => `\n  ${problems.join('\n  ')}`;

describe('deploy/kubernetes manifests', () => {
  test('every file parses; the expected objects are there', () => {
    const kinds = docs.map((d) => `${d.doc.kind}/${d.doc.metadata?.name}`).sort();
    assert.deepEqual(kinds, [
      'Deployment/mim-sender-jid-sidecar',
      'Job/mim-sender-jid-migrate-cassandra',
      'Job/mim-sender-jid-migrate-elasticsearch',
      'Job/mim-sender-jid-migrate-postgres',
      'Job/mim-sender-jid-migrate-riak',
      'PersistentVolumeClaim/mim-sender-jid-reports',
      'Secret/mim-sender-jid-db',
      'Service/mim-sender-jid-sidecar',
    ]);
  });

  test('each document validates against the Kubernetes schema of its apiVersion/kind', async () => {
    const problems = await schemaProblems(docs);
    assert.deepEqual(problems, [], show(problems));
  });

  test('each document uses only field names of the Kubernetes API', async () => {
    const problems = await fieldNameProblems(docs);
    assert.deepEqual(problems, [], show(problems));
  });

  test('they give what the project needs: sidecars, headless Service, Indexed Jobs the CLI accepts', async () => {
    const problems = await propertyProblems(docs, facts);
    assert.deepEqual(problems, [], show(problems));
  });

  test('the Jobs all run N = 4 shards', () => {
    for (const d of docs.filter((o) => o.doc.kind === 'Job')) {
      assert.equal(shardCountOf(d.doc.spec.template.spec.containers[0].args), 4, d.file);
      assert.equal(d.doc.spec.completions, 4, d.file);
      assert.equal(d.doc.spec.parallelism, 4, d.file);
    }
  });
});

/** A copy of the manifests with `change` applied to the documents `pick` selects. */
function broken(pick: (doc: Json) => boolean, change: (doc: Json) => void): ManifestDoc[] {
  return docs.map((d) => {
    if (!pick(d.doc)) return d;
    const doc = structuredClone(d.doc);
    change(doc);
    return { ...d, doc };
  });
}

const isJob =
  (kind: string) =>
  (doc: Json): boolean =>
    doc.kind === 'Job' && doc.spec.template.spec.containers[0].args[1] === kind;
const isSidecar = (doc: Json): boolean => doc.kind === 'Deployment';
const isService = (doc: Json): boolean => doc.kind === 'Service';
const jobArgs = (doc: Json): string[] => doc.spec.template.spec.containers[0].args;
const sidecarContainer = (doc: Json): Json => doc.spec.template.spec.containers[0];
const replaceArg = (args: string[], from: string, to: string): void => {
  const i = args.indexOf(from);
  assert.ok(i >= 0, `no argument '${from}' to replace`);
  args[i] = to;
};

const BREAKAGES: { name: string; docs: () => ManifestDoc[]; expect: RegExp }[] = [
  {
    name: 'completionMode misspelt',
    docs: () => broken(isJob('postgres'), (d) => void (d.spec.completionMode = 'Indexd')),
    expect: /schema: \/spec\/completionMode must be equal to one of the allowed values/,
  },
  {
    name: 'a number written as text',
    docs: () => broken(isJob('riak'), (d) => void (d.spec.completions = '4')),
    expect: /schema: \/spec\/completions must be integer/,
  },
  {
    name: 'an unknown field in the Job spec',
    docs: () => broken(isJob('postgres'), (d) => void (d.spec.completionz = 4)),
    expect: /field: .*'"completionz"' does not exist/,
  },
  {
    name: 'an unknown field deep in a container',
    docs: () => broken(isSidecar, (d) => void (sidecarContainer(d).readinessProbe.grcp = { port: 50051 })),
    expect: /field: .*'"grcp"' does not exist in type 'IProbe'/,
  },
  {
    name: 'an unknown kind',
    docs: () => [...docs, { file: 'deploy/kubernetes/extra.yaml', position: 0, doc: { apiVersion: 'v1', kind: 'Pods', metadata: { name: 'x' } } }],
    expect: /unknown apiVersion\/kind 'v1\/Pods'/,
  },
  {
    name: 'completions not equal to parallelism',
    docs: () => broken(isJob('cassandra'), (d) => void (d.spec.parallelism = 2)),
    expect: /completions 4 != parallelism 2/,
  },
  {
    name: 'the N of --shard not equal to completions',
    docs: () => broken(isJob('elasticsearch'), (d) => replaceArg(jobArgs(d), '$(JOB_COMPLETION_INDEX)/4', '$(JOB_COMPLETION_INDEX)/3')),
    expect: /completions 4 != the N of --shard K\/3/,
  },
  {
    name: 'a fixed shard instead of the completion index',
    docs: () => broken(isJob('postgres'), (d) => replaceArg(jobArgs(d), '$(JOB_COMPLETION_INDEX)/4', '0/4')),
    expect: /no `--shard \$\(JOB_COMPLETION_INDEX\)\/N`/,
  },
  {
    name: 'a flag the CLI does not have',
    docs: () => broken(isJob('cassandra'), (d) => replaceArg(jobArgs(d), '--keyspace', '--key-space')),
    expect: /--key-space: not a flag of `migrate cassandra`/,
  },
  {
    name: 'a flag of another backend',
    docs: () => broken(isJob('postgres'), (d) => void jobArgs(d).push('--contact-points', 'db:9042')),
    expect: /--contact-points: not a flag of `migrate postgres`/,
  },
  {
    name: 'a bad flag value',
    docs: () => broken(isJob('riak'), (d) => replaceArg(jobArgs(d), '60', 'often')),
    expect: /the CLI refuses its arguments: --progress-interval must be a whole number/,
  },
  {
    name: 'an unknown backend',
    docs: () => broken(isJob('postgres'), (d) => replaceArg(jobArgs(d), 'postgres', 'postgresql')),
    expect: /'migrate postgresql': not a backend/,
  },
  {
    name: 'the SQL URL in the args',
    docs: () => broken(isJob('postgres'), (d) => void jobArgs(d).push('--url', 'postgres://u:secret@db/mim')),
    expect: /--url in the args/,
  },
  {
    name: 'a Secret key the example Secret does not have',
    docs: () =>
      broken(
        isJob('postgres'),
        (d) => void (d.spec.template.spec.containers[0].env.find((e: Json) => e.name === 'MIM_SENDER_JID_DB_URL').valueFrom.secretKeyRef.key = 'uri'),
      ),
    expect: /reads key 'uri' of Secret 'mim-sender-jid-db'/,
  },
  {
    name: 'the sidecar target naming another Service',
    docs: () =>
      broken(isJob('riak'), (d) =>
        replaceArg(
          jobArgs(d),
          'dns:///mim-sender-jid-sidecar.$(POD_NAMESPACE).svc.cluster.local:50051',
          'dns:///sidecar.$(POD_NAMESPACE).svc.cluster.local:50051',
        ),
      ),
    expect: /--sidecar is 'dns:\/\/\/sidecar\.ns-under-test\.svc\.cluster\.local:50051', not the sidecars' headless Service/,
  },
  {
    name: 'the namespace variable not defined',
    docs: () =>
      broken(
        isJob('cassandra'),
        (d) => void (d.spec.template.spec.containers[0].env = d.spec.template.spec.containers[0].env.filter((e: Json) => e.name !== 'POD_NAMESPACE')),
      ),
    expect: /'dns:\/\/\/mim-sender-jid-sidecar\.\$\(POD_NAMESPACE\)\.svc\.cluster\.local:50051' names a variable the container does not have/,
  },
  {
    name: 'the Service not headless',
    docs: () => broken(isService, (d) => void delete d.spec.clusterIP),
    expect: /0 headless Services \(clusterIP: None\) select the sidecar pods/,
  },
  {
    name: 'the sidecar on loopback',
    docs: () => broken(isSidecar, (d) => replaceArg(sidecarContainer(d).args, '0.0.0.0:50051', '127.0.0.1:50051')),
    expect: /serve listens on 127\.0\.0\.1:50051: loopback/,
  },
  {
    name: 'an HTTP readiness probe',
    docs: () => broken(isSidecar, (d) => void (sidecarContainer(d).readinessProbe = { httpGet: { port: 9464, path: '/metrics' } })),
    expect: /readinessProbe is not a gRPC probe/,
  },
  {
    name: 'a liveness probe on another port',
    docs: () => broken(isSidecar, (d) => void (sidecarContainer(d).livenessProbe.grpc.port = 50052)),
    expect: /livenessProbe probes port 50052, the sidecar serves 50051/,
  },
  {
    name: "a grace period shorter than the sidecar's",
    docs: () => broken(isSidecar, (d) => void (d.spec.template.spec.terminationGracePeriodSeconds = 5)),
    expect: /terminationGracePeriodSeconds 5 s is not above the sidecar's --shutdown-grace-ms 10000 ms/,
  },
  {
    name: 'a bad sidecar flag',
    docs: () => broken(isSidecar, (d) => void sidecarContainer(d).args.push('--pool', '2')),
    expect: /`serve` refuses its arguments or environment/,
  },
  {
    name: 'root allowed',
    docs: () => broken(isJob('elasticsearch'), (d) => void (d.spec.template.spec.securityContext.runAsNonRoot = false)),
    expect: /pod securityContext\.runAsNonRoot is not true/,
  },
  {
    name: 'a writable root filesystem',
    docs: () => broken(isSidecar, (d) => void (sidecarContainer(d).securityContext.readOnlyRootFilesystem = false)),
    expect: /readOnlyRootFilesystem is not true/,
  },
  {
    name: 'no resource limits',
    docs: () => broken(isJob('riak'), (d) => void delete d.spec.template.spec.containers[0].resources.limits),
    expect: /resources\.limits\.memory is not set/,
  },
  {
    name: 'the report on the read-only root filesystem',
    docs: () => broken(isJob('cassandra'), (d) => void delete d.spec.template.spec.containers[0].volumeMounts),
    expect: /the report \(\/data\) is not on a writable volume/,
  },
  {
    name: 'no Job for a backend kind',
    docs: () => docs.filter((d) => !isJob('riak')(d.doc)),
    expect: /no migrate Job for riak/,
  },
];

describe('the checks catch broken manifests', () => {
  for (const breakage of BREAKAGES) {
    test(breakage.name, async () => {
      const problems = await allProblems(breakage.docs(), facts);
      assert.ok(
        problems.some((p) => breakage.expect.test(p)),
        `expected a problem matching ${breakage.expect}, got:${show(problems)}`,
      );
    });
  }
});
