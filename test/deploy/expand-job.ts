/**
 * What one pod of a Job would run: its command line and environment, computed from the Job
 * manifest as Kubernetes computes them, so that a test can run the shards of an Indexed Job
 * locally, one process per completion index:
 *
 *   const pod = expandJob(job, 2, { namespace: 'mim', secrets: { 'mim-sender-jid-db': { url } } });
 *   spawn(process.execPath, ['bin/mim-sender-jid.js', ...pod.args], { env: { ...process.env, ...pod.env } });
 *
 * (`expandPod` does the same for any pod template, e.g. the sidecar Deployment's.)
 *
 * Kubernetes' rules, followed here:
 * - The Job controller adds `JOB_COMPLETION_INDEX` (from the pod's completion-index annotation)
 *   at the END of every container's `env`, unless the container defines it already
 *   (pkg/controller/job/indexed_job_utils.go, addCompletionIndexEnvVariable).
 * - The kubelet builds the environment in order: `envFrom` first, then each `env` entry; a `value`
 *   is expanded with the variables defined before it (so an `env` value cannot use
 *   `$(JOB_COMPLETION_INDEX)`, which comes last); `valueFrom` is resolved, never expanded.
 *   A missing Secret or key stops the pod (CreateContainerConfigError) unless `optional: true`,
 *   in which case the variable is left out.
 * - `command` and `args` are expanded with the whole environment.
 * - Expansion (third_party/forked/golang/expansion): `$(NAME)` becomes the variable's value, or
 *   stays `$(NAME)` when there is no such variable; `$$` becomes `$`; any other `$` is kept.
 *
 * Not modelled: service links (the manifests set `enableServiceLinks: false`), the image's
 * ENTRYPOINT (`command` is null when the container does not set it), `fieldRef`s other than the
 * pod's name, namespace, labels and annotations, and `resourceFieldRef` beyond cpu and memory.
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- Kubernetes manifests are untyped YAML walked by key name */

export const COMPLETION_INDEX_ENV = 'JOB_COMPLETION_INDEX';
export const COMPLETION_INDEX_ANNOTATION = 'batch.kubernetes.io/job-completion-index';

export interface ExpandOptions {
  /** The pod's namespace (fieldRef metadata.namespace). Default `default`. */
  readonly namespace?: string;
  /** Secret name -> key -> value, for `secretKeyRef` and `envFrom.secretRef`. */
  readonly secrets?: Readonly<Record<string, Readonly<Record<string, string>>>>;
  /** ConfigMap name -> key -> value, for `configMapKeyRef` and `envFrom.configMapRef`. */
  readonly configMaps?: Readonly<Record<string, Readonly<Record<string, string>>>>;
  /** The pod's name (fieldRef metadata.name). Default `JOBNAME-INDEX` (Kubernetes adds a random suffix). */
  readonly podName?: string;
  /** Which container; default the only one (an error when there are several). */
  readonly container?: string;
}

export interface ExpandedPod {
  /** The container's `command`, expanded; null when it has none (the image's ENTRYPOINT runs). */
  readonly command: string[] | null;
  /** The container's `args`, expanded. */
  readonly args: string[];
  /** The container's environment as the process would see it (what the manifest defines). */
  readonly env: Record<string, string>;
  /** `workingDir`, as written (Kubernetes does not expand it). */
  readonly workingDir: string | null;
  readonly image: string | null;
}

export class ExpandError extends Error {
  override readonly name = 'ExpandError';
}

/** Kubernetes' `$(VAR)` expansion; `lookup` returns undefined for an unknown name. */
export function expandReferences(input: string, lookup: (name: string) => string | undefined): string {
  let out = '';
  let checkpoint = 0;
  for (let cursor = 0; cursor < input.length; cursor++) {
    if (input[cursor] !== '$' || cursor + 1 >= input.length) continue;
    out += input.slice(checkpoint, cursor);
    const rest = input.slice(cursor + 1);
    let read: string;
    let advance: number;
    if (rest[0] === '$') {
      read = '$'; // escaped operator
      advance = 1;
    } else if (rest[0] === '(') {
      const close = rest.indexOf(')', 1);
      if (close === -1) {
        read = '$('; // incomplete reference: kept as written
        advance = 1;
      } else {
        const name = rest.slice(1, close);
        read = lookup(name) ?? `$(${name})`;
        advance = close + 1;
      }
    } else {
      read = '$' + rest[0]; // not a reference
      advance = 1;
    }
    out += read;
    cursor += advance;
    checkpoint = cursor + 1;
  }
  return out + input.slice(checkpoint);
}

type Json = Record<string, any>;

function selectContainer(podSpec: Json, name: string | undefined): Json {
  const containers: Json[] = Array.isArray(podSpec.containers) ? podSpec.containers : [];
  if (name !== undefined) {
    const found = containers.find((c) => c.name === name);
    if (found === undefined) throw new ExpandError(`no container named '${name}' (have: ${containers.map((c) => c.name).join(', ')})`);
    return found;
  }
  if (containers.length !== 1) throw new ExpandError(`the pod has ${containers.length} containers: say which one`);
  return containers[0];
}

/** Parses a Kubernetes quantity ("500m", "2", "1Gi", "1e3") into a number of base units. */
export function parseQuantity(text: string | number): number {
  if (typeof text === 'number') return text;
  const m = /^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$/.exec(text.trim());
  if (m === null) throw new ExpandError(`'${text}' is not a quantity`);
  const factors: Record<string, number> = {
    n: 1e-9,
    u: 1e-6,
    m: 1e-3,
    k: 1e3,
    M: 1e6,
    G: 1e9,
    T: 1e12,
    P: 1e15,
    E: 1e18,
    Ki: 2 ** 10,
    Mi: 2 ** 20,
    Gi: 2 ** 30,
    Ti: 2 ** 40,
    Pi: 2 ** 50,
    Ei: 2 ** 60,
  };
  return Number(m[1]) * (m[2] === undefined ? 1 : factors[m[2]]);
}

function fieldValue(path: string, pod: { name: string; namespace: string; labels: Json; annotations: Json }): string {
  if (path === 'metadata.name') return pod.name;
  if (path === 'metadata.namespace') return pod.namespace;
  const keyed = /^metadata\.(labels|annotations)\['([^']+)'\]$/.exec(path);
  if (keyed !== null) {
    const value = (keyed[1] === 'labels' ? pod.labels : pod.annotations)[keyed[2]];
    return value === undefined ? '' : String(value);
  }
  throw new ExpandError(`fieldRef '${path}' is not modelled`);
}

function lookupIn(store: ExpandOptions['secrets'], name: string, key: string | undefined): Readonly<Record<string, string>> | string | undefined {
  const object = store?.[name];
  if (object === undefined) return undefined;
  if (key === undefined) return object;
  return object[key];
}

/** What the pod gets from its controller besides its template (a Job: labels, annotations, the index variable). */
export interface PodContext extends ExpandOptions {
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
  /** Env entries the controller appends to the container's own (unless a name is already there). */
  readonly appendedEnv?: readonly Json[];
}

/**
 * The command line and environment of a container of a pod made from `template` (a pod template:
 * `{metadata, spec}`), as the kubelet computes them.
 */
export function expandPod(template: Json, context: PodContext = {}): ExpandedPod {
  const podSpec: Json = template?.spec ?? {};
  const container = selectContainer(podSpec, context.container);
  const pod = {
    name: context.podName ?? 'pod',
    namespace: context.namespace ?? 'default',
    labels: { ...(template?.metadata?.labels ?? {}), ...(context.labels ?? {}) },
    annotations: { ...(template?.metadata?.annotations ?? {}), ...(context.annotations ?? {}) },
  };

  const envEntries: Json[] = [...(Array.isArray(container.env) ? container.env : [])];
  for (const extra of context.appendedEnv ?? []) {
    if (!envEntries.some((e) => e.name === extra.name)) envEntries.push(extra);
  }

  const env = new Map<string, string>();
  for (const source of Array.isArray(container.envFrom) ? container.envFrom : []) {
    const prefix: string = source.prefix ?? '';
    const ref: Json | undefined = source.secretRef ?? source.configMapRef;
    const what = source.secretRef !== undefined ? 'Secret' : 'ConfigMap';
    const store = what === 'Secret' ? context.secrets : context.configMaps;
    const object = ref === undefined ? undefined : lookupIn(store, ref.name, undefined);
    if (object === undefined || typeof object === 'string') {
      if (ref?.optional === true) continue;
      throw new ExpandError(`envFrom: ${what} '${ref?.name}' not found: the pod would not start (CreateContainerConfigError)`);
    }
    for (const [key, value] of Object.entries(object)) env.set(prefix + key, value);
  }

  for (const entry of envEntries) {
    const name: string = entry.name;
    if (typeof entry.value === 'string' && entry.value !== '') {
      env.set(
        name,
        expandReferences(entry.value, (ref) => env.get(ref)),
      );
      continue;
    }
    const from: Json | undefined = entry.valueFrom;
    if (from === undefined) {
      env.set(name, '');
      continue;
    }
    if (from.fieldRef !== undefined) {
      env.set(name, fieldValue(from.fieldRef.fieldPath, pod));
    } else if (from.secretKeyRef !== undefined || from.configMapKeyRef !== undefined) {
      const ref: Json = from.secretKeyRef ?? from.configMapKeyRef;
      const what = from.secretKeyRef !== undefined ? 'Secret' : 'ConfigMap';
      const value = lookupIn(what === 'Secret' ? context.secrets : context.configMaps, ref.name, ref.key);
      if (typeof value !== 'string') {
        if (ref.optional === true) continue;
        throw new ExpandError(`env ${name}: key '${ref.key}' of ${what} '${ref.name}' not found: the pod would not start (CreateContainerConfigError)`);
      }
      env.set(name, value);
    } else if (from.resourceFieldRef !== undefined) {
      const ref: Json = from.resourceFieldRef;
      const target = ref.containerName === undefined ? container : selectContainer(podSpec, ref.containerName);
      const [kind, resource] = String(ref.resource).split('.');
      const quantity = target.resources?.[kind]?.[resource];
      if (quantity === undefined) throw new ExpandError(`env ${name}: ${ref.resource} is not set (Kubernetes would use the node's allocatable)`);
      env.set(name, String(Math.ceil(parseQuantity(quantity) / parseQuantity(ref.divisor ?? '1'))));
    } else {
      throw new ExpandError(`env ${name}: valueFrom ${Object.keys(from).join(', ')} is not modelled`);
    }
  }

  const lookup = (ref: string): string | undefined => env.get(ref);
  const expandAll = (list: unknown): string[] => (Array.isArray(list) ? list.map((item) => expandReferences(String(item), lookup)) : []);
  return {
    command: Array.isArray(container.command) && container.command.length > 0 ? expandAll(container.command) : null,
    args: expandAll(container.args),
    env: Object.fromEntries(env),
    workingDir: typeof container.workingDir === 'string' ? container.workingDir : null,
    image: typeof container.image === 'string' ? container.image : null,
  };
}

/**
 * The command line and environment of the pod with completion index `index` of `job` (a parsed
 * batch/v1 Job manifest). Throws ExpandError when the pod could not start (a missing Secret key,
 * an index outside the Job) or when the manifest uses something not modelled here.
 */
export function expandJob(job: Json, index: number, options: ExpandOptions = {}): ExpandedPod {
  if (job?.apiVersion !== 'batch/v1' || job?.kind !== 'Job') throw new ExpandError(`not a batch/v1 Job: ${job?.apiVersion}/${job?.kind}`);
  const spec: Json = job.spec ?? {};
  const indexed = spec.completionMode === 'Indexed';
  const completions: number = spec.completions ?? 1;
  if (!Number.isInteger(index) || index < 0 || index >= completions) {
    throw new ExpandError(`index ${index} is outside the Job's completions (0..${completions - 1})`);
  }
  const jobName: string = job.metadata?.name ?? 'job';
  const labels: Record<string, string> = { 'job-name': jobName, 'batch.kubernetes.io/job-name': jobName };
  const annotations: Record<string, string> = {};
  if (indexed) {
    labels[COMPLETION_INDEX_ANNOTATION] = String(index);
    annotations[COMPLETION_INDEX_ANNOTATION] = String(index);
  }
  return expandPod(spec.template ?? {}, {
    ...options,
    podName: options.podName ?? `${jobName}-${index}`,
    labels,
    annotations,
    appendedEnv: indexed
      ? [{ name: COMPLETION_INDEX_ENV, valueFrom: { fieldRef: { fieldPath: `metadata.annotations['${COMPLETION_INDEX_ANNOTATION}']` } } }]
      : [],
  });
}
