/**
 * The offline checks of deploy/kubernetes/: no cluster runs on our machines, so every manifest
 * is checked here against
 *   1. the Kubernetes OpenAPI schemas (kubernetes-models' validators: types, enums, required
 *      fields), an unknown apiVersion/kind being an error;
 *   2. the Kubernetes API's field names (TypeScript's excess-property check against
 *      kubernetes-models' interfaces: the schemas accept unknown fields, a cluster with strict
 *      field validation refuses them);
 *   3. what the project needs of them, against the CLI itself: its argument parsers,
 *      its `--help`, its defaults.
 * Each check returns problems as text (`file#document: what`); none means the manifests pass.
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- Kubernetes manifests are untyped YAML walked by key name */
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import ts from 'typescript';
import { parseAllDocuments } from 'yaml';
import { BACKEND_KINDS, loadBackend } from '../../clients/backends/registry.js';
import { parseCommand, parseShard, URL_ENV } from '../../cli/options.js';
import { PASSWORD_ENV } from '../../clients/backends/credentials.js';
import { ConfigError, isLoopbackHost, loadConfig, parseHostPort } from '../../services/sidecar/config.js';
import { expandJob, expandPod, ExpandError, parseQuantity } from './expand-job.js';

type Json = Record<string, any>;

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const MANIFEST_DIR = join(REPO_ROOT, 'deploy/kubernetes');
/** The image's user (deploy/Dockerfile: USER 10001:10001). */
export const IMAGE_UID = 10001;
/** `migrate --stop-grace` default (cli/migrate.ts). */
const DEFAULT_STOP_GRACE_S = 30;
/** Kubernetes' default terminationGracePeriodSeconds. */
const DEFAULT_TERMINATION_GRACE_S = 30;
/** The health service names the sidecar serves (services/sidecar/server.ts): '' and SenderJidService. */
const HEALTH_SERVICES = new Set(['', 'mongooseim.mam.v1.SenderJidService']);
const SQL_KINDS = new Set(['postgres', 'mysql', 'mssql']);
/** The namespace the Jobs are expanded in, for the checks. */
const CHECK_NAMESPACE = 'ns-under-test';

export interface ManifestDoc {
  /** Path relative to the repository root. */
  readonly file: string;
  /** 0-based position of the document in its file. */
  readonly position: number;
  readonly doc: Json;
}

export const where = (d: ManifestDoc): string => `${d.file}#${d.position} (${d.doc?.kind ?? '?'} ${d.doc?.metadata?.name ?? '?'})`;

/** Every non-empty YAML document of every .yaml/.yml file under `dir`; YAML errors are thrown. */
export function loadManifests(dir = MANIFEST_DIR): ManifestDoc[] {
  const files: string[] = [];
  const walk = (at: string): void => {
    for (const name of readdirSync(at).sort()) {
      const path = join(at, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (/\.ya?ml$/.test(name)) files.push(path);
    }
  };
  walk(dir);
  const docs: ManifestDoc[] = [];
  for (const path of files) {
    const file = relative(REPO_ROOT, path);
    parseAllDocuments(readFileSync(path, 'utf8')).forEach((parsed, position) => {
      const errors = [...parsed.errors, ...parsed.warnings];
      if (errors.length > 0) throw new Error(`${file}#${position}: ${errors.map((e) => e.message).join('; ')}`);
      const doc = parsed.toJS();
      if (doc !== null && doc !== undefined) docs.push({ file, position, doc });
    });
  }
  return docs;
}

// ---------------------------------------------------------------------------------------------
// 1. Schemas

let modelClasses: Map<string, any> | undefined;

/** apiVersion/kind -> kubernetes-models class, for every built-in kind the package has. */
export async function modelClassMap(): Promise<Map<string, any>> {
  if (modelClasses !== undefined) return modelClasses;
  const models: Json = await import('kubernetes-models');
  const map = new Map<string, any>();
  const walk = (ns: Json, depth: number): void => {
    for (const value of Object.values(ns)) {
      if (typeof value === 'function' && typeof value.apiVersion === 'string' && typeof value.kind === 'string') {
        map.set(`${value.apiVersion}/${value.kind}`, value);
      } else if (value !== null && typeof value === 'object' && depth < 3) {
        walk(value, depth + 1);
      }
    }
  };
  walk(models, 0);
  modelClasses = map;
  return map;
}

export async function schemaProblems(docs: readonly ManifestDoc[]): Promise<string[]> {
  const classes = await modelClassMap();
  const problems: string[] = [];
  for (const d of docs) {
    const Model = classes.get(`${d.doc?.apiVersion}/${d.doc?.kind}`);
    if (Model === undefined) {
      problems.push(`${where(d)}: unknown apiVersion/kind '${d.doc?.apiVersion}/${d.doc?.kind}'`);
      continue;
    }
    try {
      new Model(d.doc).validate();
    } catch (error) {
      const details = (error as { errors?: { instancePath: string; message?: string; params?: unknown }[] }).errors;
      const text =
        details === undefined
          ? (error as Error).message
          : details.map((e) => `${e.instancePath || '/'} ${e.message ?? ''} ${JSON.stringify(e.params ?? {})}`).join('; ');
      problems.push(`${where(d)}: schema: ${text}`);
    }
    if (typeof d.doc?.metadata?.name !== 'string' || d.doc.metadata.name === '') problems.push(`${where(d)}: no metadata.name`);
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// 2. Field names: each document as an object literal typed with kubernetes-models' interface.

/** `kubernetes-models/<group/version>/<Kind>` and its `I<Kind>` interface. */
function typeModuleOf(apiVersion: string, kind: string): string {
  return `kubernetes-models/${apiVersion}/${kind}`;
}

let lastProgram: ts.Program | undefined;

export async function fieldNameProblems(docs: readonly ManifestDoc[]): Promise<string[]> {
  const classes = await modelClassMap();
  const known = docs.filter((d) => classes.has(`${d.doc?.apiVersion}/${d.doc?.kind}`));
  const lines: string[] = [];
  const owner: ManifestDoc[] = []; // line (0-based) -> document
  known.forEach((d, i) => {
    lines.push(`import type { I${d.doc.kind} as T${i} } from ${JSON.stringify(typeModuleOf(d.doc.apiVersion, d.doc.kind))};`);
    owner.push(d);
  });
  known.forEach((d, i) => {
    const body = `export const d${i}: T${i} = ${JSON.stringify(d.doc, null, 2)};`.split('\n');
    for (const line of body) {
      lines.push(line);
      owner.push(d);
    }
  });
  // A file that does not exist, in the repository (so that node_modules resolves), read from memory.
  const fileName = join(REPO_ROOT, 'test/deploy/__manifests_under_check__.ts');
  const text = lines.join('\n');
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    types: [],
  };
  const host = ts.createCompilerHost(options, true);
  const getSourceFile = host.getSourceFile.bind(host);
  const fileExists = host.fileExists.bind(host);
  const readFile = host.readFile.bind(host);
  host.getSourceFile = (name, languageVersion, ...rest) =>
    resolve(name) === fileName ? ts.createSourceFile(name, text, languageVersion, true) : getSourceFile(name, languageVersion, ...rest);
  host.fileExists = (name) => resolve(name) === fileName || fileExists(name);
  host.readFile = (name) => (resolve(name) === fileName ? text : readFile(name));
  const program = ts.createProgram([fileName], options, host, lastProgram);
  lastProgram = program; // the next check reuses the declaration files already parsed
  const source = program.getSourceFile(fileName);
  const diagnostics = ts.getPreEmitDiagnostics(program, source).filter((diag) => diag.file?.fileName !== undefined && resolve(diag.file.fileName) === fileName);
  return diagnostics.map((diag) => {
    const line = diag.file!.getLineAndCharacterOfPosition(diag.start ?? 0).line;
    const d = owner[line];
    const message = ts.flattenDiagnosticMessageText(diag.messageText, ' ').replace(/\s+/g, ' ');
    return `${d === undefined ? 'manifests' : where(d)}: field: ${message} (at: ${lines[line]?.trim()})`;
  });
}

// ---------------------------------------------------------------------------------------------
// 3. What the project needs

/** A flag of `migrate KIND --help`: its name, and whether it takes a value (and its placeholder). */
export interface HelpFlag {
  readonly name: string;
  readonly value: string | null;
}

const execFileAsync = promisify(execFile);

/** The flags `mim-sender-jid migrate KIND --help` lists, read from the built CLI's own output. */
export async function migrateHelpFlags(kind: string): Promise<Map<string, HelpFlag>> {
  const { stdout } = await execFileAsync(process.execPath, [join(REPO_ROOT, 'bin/mim-sender-jid.js'), 'migrate', kind, '--help']);
  const flags = new Map<string, HelpFlag>();
  for (const line of stdout.split('\n')) {
    const m = /^\s+--([a-z][a-z0-9-]*)(?: (\S+))?(?:\s{2,}|$)/.exec(line);
    if (m !== null) flags.set(m[1], { name: m[1], value: m[2] ?? null });
  }
  return flags;
}

export interface CliFacts {
  /** Backend kind -> the flags its `migrate --help` lists. */
  readonly migrateFlags: ReadonlyMap<string, ReadonlyMap<string, HelpFlag>>;
}

export async function cliFacts(): Promise<CliFacts> {
  const migrateFlags = new Map<string, Map<string, HelpFlag>>();
  for (const kind of BACKEND_KINDS) migrateFlags.set(kind, await migrateHelpFlags(kind));
  return { migrateFlags };
}

function podTemplateOf(doc: Json): Json | undefined {
  if (doc.kind === 'Deployment' || doc.kind === 'Job' || doc.kind === 'StatefulSet' || doc.kind === 'DaemonSet') return doc.spec?.template;
  return undefined;
}

const isSubset = (selector: Json | undefined, labels: Json | undefined): boolean =>
  selector !== undefined && Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels?.[k] === v);

/** Secret name -> key -> value, from the Secret manifests (`stringData`, or base64 `data`). */
function secretsOf(docs: readonly ManifestDoc[]): Record<string, Record<string, string>> {
  const secrets: Record<string, Record<string, string>> = {};
  for (const { doc } of docs) {
    if (doc.kind !== 'Secret') continue;
    const values: Record<string, string> = {};
    for (const [k, v] of Object.entries(doc.data ?? {})) values[k] = Buffer.from(String(v), 'base64').toString('utf8');
    for (const [k, v] of Object.entries(doc.stringData ?? {})) values[k] = String(v);
    secrets[doc.metadata?.name] = values;
  }
  return secrets;
}

/** Mount paths of a container whose volume is writable (not a Secret, ConfigMap, downward API or projected one, not readOnly). */
function writableMounts(podSpec: Json, container: Json): string[] {
  const volumes = new Map<string, Json>((podSpec.volumes ?? []).map((v: Json) => [v.name, v]));
  return (container.volumeMounts ?? [])
    .filter((m: Json) => m.readOnly !== true)
    .filter((m: Json) => {
      const v = volumes.get(m.name);
      return v !== undefined && (v.emptyDir !== undefined || v.persistentVolumeClaim !== undefined || v.ephemeral !== undefined || v.hostPath !== undefined);
    })
    .map((m: Json) => String(m.mountPath).replace(/\/+$/, ''));
}

const under = (path: string, mounts: readonly string[]): boolean => mounts.some((m) => path === m || path.startsWith(m + '/'));

/** Checks every pod template: non-root, locked down, sized, its volumes and Secrets defined. */
function podProblems(d: ManifestDoc, docs: readonly ManifestDoc[], secrets: Record<string, Record<string, string>>): string[] {
  const problems: string[] = [];
  const say = (text: string): void => void problems.push(`${where(d)}: ${text}`);
  const template = podTemplateOf(d.doc);
  const podSpec: Json = template?.spec ?? {};
  const pod: Json = podSpec.securityContext ?? {};
  if (pod.runAsNonRoot !== true) say('pod securityContext.runAsNonRoot is not true');
  if (pod.runAsUser !== IMAGE_UID) say(`pod securityContext.runAsUser is ${pod.runAsUser}, not the image's user ${IMAGE_UID}`);
  if (pod.seccompProfile?.type !== 'RuntimeDefault') say('pod securityContext.seccompProfile.type is not RuntimeDefault');
  if (podSpec.enableServiceLinks !== false) say('enableServiceLinks is not false (Service links would add MIM_SENDER_JID_*-like variables to the environment)');
  const volumeNames = new Set((podSpec.volumes ?? []).map((v: Json) => v.name));
  for (const v of podSpec.volumes ?? []) {
    const claim = v.persistentVolumeClaim?.claimName;
    if (claim !== undefined && !docs.some((o) => o.doc.kind === 'PersistentVolumeClaim' && o.doc.metadata?.name === claim)) {
      say(`volume '${v.name}' claims '${claim}', which no PersistentVolumeClaim here defines`);
    }
  }
  const containers: Json[] = podSpec.containers ?? [];
  if (containers.length === 0) say('no container');
  for (const c of containers) {
    const sc: Json = c.securityContext ?? {};
    const name = `container '${c.name}'`;
    if (sc.allowPrivilegeEscalation !== false) say(`${name}: allowPrivilegeEscalation is not false`);
    if (sc.readOnlyRootFilesystem !== true) say(`${name}: readOnlyRootFilesystem is not true`);
    if (!(sc.capabilities?.drop ?? []).includes('ALL')) say(`${name}: capabilities.drop does not include ALL`);
    if (sc.runAsNonRoot === false || (sc.runAsUser !== undefined && sc.runAsUser === 0)) say(`${name}: runs as root`);
    if (sc.privileged === true) say(`${name}: privileged`);
    for (const kind of ['requests', 'limits']) {
      for (const resource of ['cpu', 'memory']) {
        if (c.resources?.[kind]?.[resource] === undefined) say(`${name}: resources.${kind}.${resource} is not set`);
      }
    }
    for (const resource of ['cpu', 'memory']) {
      const request = c.resources?.requests?.[resource];
      const limit = c.resources?.limits?.[resource];
      if (request !== undefined && limit !== undefined && parseQuantity(request) > parseQuantity(limit)) say(`${name}: ${resource} request above its limit`);
    }
    for (const m of c.volumeMounts ?? []) if (!volumeNames.has(m.name)) say(`${name}: mounts '${m.name}', which is not a volume of the pod`);
    if (c.workingDir !== undefined && !under(c.workingDir, writableMounts(podSpec, c))) {
      say(`${name}: workingDir ${c.workingDir} is not on a writable volume (the root filesystem is read-only)`);
    }
    for (const e of c.env ?? []) {
      const ref = e.valueFrom?.secretKeyRef;
      if (ref !== undefined && ref.optional !== true && secrets[ref.name]?.[ref.key] === undefined) {
        say(`${name}: env ${e.name} reads key '${ref.key}' of Secret '${ref.name}', which the example Secret here does not define`);
      }
      if ((e.name === URL_ENV || e.name === PASSWORD_ENV) && e.valueFrom?.secretKeyRef === undefined) {
        say(`${name}: env ${e.name} is not taken from a Secret`);
      }
    }
  }
  const images = new Set(containers.map((c) => c.image));
  if (images.size !== 1) say(`containers use ${images.size} images`);
  return problems;
}

interface SidecarFacts {
  readonly deployment: ManifestDoc;
  readonly port: number;
  readonly labels: Json;
}

function sidecarProblems(d: ManifestDoc): { problems: string[]; facts?: SidecarFacts } {
  const problems: string[] = [];
  const say = (text: string): void => void problems.push(`${where(d)}: ${text}`);
  const spec: Json = d.doc.spec ?? {};
  const template: Json = spec.template ?? {};
  const podSpec: Json = template.spec ?? {};
  if (!(spec.replicas >= 2)) say(`replicas is ${spec.replicas}: several sidecars are the point`);
  if (!isSubset(spec.selector?.matchLabels, template.metadata?.labels)) say("selector.matchLabels does not select the pod template's labels");
  const container: Json = (podSpec.containers ?? [])[0] ?? {};
  let pod;
  try {
    pod = expandPod(template, { podName: 'sidecar-0', namespace: CHECK_NAMESPACE });
  } catch (error) {
    say(`the pod would not start: ${(error as Error).message}`);
    return { problems };
  }
  if (pod.command !== null) say("sets `command`: the image's ENTRYPOINT is the CLI, give `args`");
  if (pod.args[0] !== 'serve') {
    say(`args do not start with 'serve': ${JSON.stringify(pod.args)}`);
    return { problems };
  }
  let config;
  try {
    config = loadConfig(pod.args.slice(1), pod.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    say(`\`serve\` refuses its arguments or environment: ${error.message}`);
    return { problems };
  }
  const listen = parseHostPort(config.listen, '--listen');
  if (isLoopbackHost(listen.host)) say(`serve listens on ${config.listen}: loopback, unreachable from other pods (--listen 0.0.0.0:PORT)`);
  const port = listen.port;
  const containerPorts: Json[] = container.ports ?? [];
  if (!containerPorts.some((p) => p.containerPort === port)) say(`no containerPort ${port} (the gRPC port)`);
  if (config.metricsListen !== null) {
    const metrics = parseHostPort(config.metricsListen, '--metrics-listen');
    if (isLoopbackHost(metrics.host)) say(`metrics on ${config.metricsListen}: loopback, Prometheus cannot scrape it`);
    if (!containerPorts.some((p) => p.containerPort === metrics.port)) say(`no containerPort ${metrics.port} (the metrics port)`);
  }
  for (const probeName of ['readinessProbe', 'livenessProbe']) {
    const probe: Json | undefined = container[probeName];
    if (probe?.grpc === undefined) {
      say(`${probeName} is not a gRPC probe`);
      continue;
    }
    if (probe.grpc.port !== port) say(`${probeName} probes port ${probe.grpc.port}, the sidecar serves ${port}`);
    if (!HEALTH_SERVICES.has(probe.grpc.service ?? ''))
      say(`${probeName} asks about service '${probe.grpc.service}', which the sidecar's health service does not know`);
  }
  const graceS = podSpec.terminationGracePeriodSeconds ?? DEFAULT_TERMINATION_GRACE_S;
  if (!(graceS * 1000 > config.shutdownGraceMs)) {
    say(
      `terminationGracePeriodSeconds ${graceS} s is not above the sidecar's --shutdown-grace-ms ${config.shutdownGraceMs} ms: calls in flight would be cut by SIGKILL`,
    );
  }
  const poolFromFlag = pod.args.some((a) => a === '--pool-size' || a.startsWith('--pool-size='));
  if (!poolFromFlag && pod.env.MIM_SENDER_JID_POOL_SIZE === undefined) {
    say("the decoding pool size is not set: its default, the core count, sees the node's cores, not the pod's CPU limit");
  } else {
    const cpuLimit = container.resources?.limits?.cpu;
    if (cpuLimit !== undefined && config.poolSize > Math.ceil(parseQuantity(cpuLimit)))
      say(`--pool-size ${config.poolSize} is above the CPU limit ${cpuLimit}`);
  }
  return { problems, facts: { deployment: d, port, labels: template.metadata?.labels ?? {} } };
}

function serviceProblems(docs: readonly ManifestDoc[], sidecar: SidecarFacts): { problems: string[]; service?: ManifestDoc; servicePort?: number } {
  const problems: string[] = [];
  const services = docs.filter((d) => d.doc.kind === 'Service');
  for (const s of services) {
    if (!docs.some((o) => isSubset(s.doc.spec?.selector, podTemplateOf(o.doc)?.metadata?.labels)))
      problems.push(`${where(s)}: its selector selects no pod template here`);
  }
  const headless = services.filter((s) => s.doc.spec?.clusterIP === 'None' && isSubset(s.doc.spec?.selector, sidecar.labels));
  if (headless.length !== 1) {
    problems.push(`${where(sidecar.deployment)}: ${headless.length} headless Services (clusterIP: None) select the sidecar pods; want exactly 1`);
    return { problems };
  }
  const service = headless[0];
  const containerPorts: Json[] = podTemplateOf(sidecar.deployment.doc)?.spec?.containers?.[0]?.ports ?? [];
  const grpcPort = (service.doc.spec?.ports ?? []).find((p: Json) => {
    const target = p.targetPort ?? p.port;
    const targetNumber = typeof target === 'number' ? target : containerPorts.find((c) => c.name === target)?.containerPort;
    return targetNumber === sidecar.port;
  });
  if (grpcPort === undefined) {
    problems.push(`${where(service)}: no port reaches the sidecar's gRPC port ${sidecar.port}`);
    return { problems, service };
  }
  // Headless: clients connect to the pod addresses at the port they name, no port mapping.
  if (grpcPort.port !== sidecar.port)
    problems.push(`${where(service)}: port ${grpcPort.port} differs from the pods' ${sidecar.port}; a headless Service does not map ports`);
  return { problems, service, servicePort: grpcPort.port };
}

const SHARD_ARG = /^\$\(JOB_COMPLETION_INDEX\)\/([1-9][0-9]*)$/;

/** The N of `--shard $(JOB_COMPLETION_INDEX)/N` in a Job's (unexpanded) args, or null. */
export function shardCountOf(args: readonly string[]): number | null {
  for (let i = 0; i < args.length; i++) {
    const value = args[i] === '--shard' ? args[i + 1] : args[i].startsWith('--shard=') ? args[i].slice('--shard='.length) : undefined;
    if (value === undefined) continue;
    const m = SHARD_ARG.exec(value);
    return m === null ? null : Number(m[1]);
  }
  return null;
}

async function jobProblems(
  d: ManifestDoc,
  facts: CliFacts,
  secrets: Record<string, Record<string, string>>,
  sidecarTarget: string | undefined,
): Promise<{ problems: string[]; kind?: string }> {
  const problems: string[] = [];
  const say = (text: string): void => void problems.push(`${where(d)}: ${text}`);
  const spec: Json = d.doc.spec ?? {};
  const podSpec: Json = spec.template?.spec ?? {};
  const container: Json = (podSpec.containers ?? [])[0] ?? {};
  const rawArgs: string[] = (container.args ?? []).map(String);

  if (spec.completionMode !== 'Indexed') say(`completionMode is ${spec.completionMode}, not Indexed`);
  const n = shardCountOf(rawArgs);
  if (n === null) say('args have no `--shard $(JOB_COMPLETION_INDEX)/N`');
  if (spec.completions !== spec.parallelism) say(`completions ${spec.completions} != parallelism ${spec.parallelism}`);
  if (n !== null && spec.completions !== n) say(`completions ${spec.completions} != the N of --shard K/${n}`);
  if (spec.backoffLimitPerIndex === undefined && spec.backoffLimit === undefined) say('neither backoffLimitPerIndex nor backoffLimit is set');
  if (spec.backoffLimitPerIndex !== undefined && podSpec.restartPolicy !== 'Never') say('backoffLimitPerIndex needs restartPolicy: Never');
  if (podSpec.restartPolicy !== 'Never' && podSpec.restartPolicy !== 'OnFailure') say(`restartPolicy is ${podSpec.restartPolicy}`);
  for (const rule of spec.podFailurePolicy?.rules ?? []) {
    const name = rule.onExitCodes?.containerName;
    if (name !== undefined && !(podSpec.containers ?? []).some((c: Json) => c.name === name))
      say(`podFailurePolicy names container '${name}', which the pod does not have`);
  }
  if (container.command !== undefined) say("sets `command`: the image's ENTRYPOINT is the CLI, give `args`");
  if (rawArgs[0] !== 'migrate') {
    say(`args do not start with 'migrate': ${JSON.stringify(rawArgs)}`);
    return { problems };
  }
  const kind = rawArgs[1];
  const helpFlags = facts.migrateFlags.get(kind);
  if (helpFlags === undefined) {
    say(`'migrate ${kind}': not a backend (${BACKEND_KINDS.join(', ')})`);
    return { problems };
  }
  for (const arg of rawArgs.slice(2)) {
    if (!arg.startsWith('--')) continue;
    const name = arg.slice(2).split('=')[0];
    if (!helpFlags.has(name)) say(`--${name}: not a flag of \`migrate ${kind}\` (see its --help)`);
  }
  if (SQL_KINDS.has(kind)) {
    if (rawArgs.some((a) => a === '--url' || a.startsWith('--url=')))
      say('--url in the args: the SQL URL holds a password, give it through a Secret and MIM_SENDER_JID_DB_URL');
    if (!(container.env ?? []).some((e: Json) => e.name === URL_ENV && e.valueFrom?.secretKeyRef !== undefined)) say(`no ${URL_ENV} from a Secret`);
  }
  if (rawArgs.includes('--username') && !rawArgs.includes('--password-file') && !(container.env ?? []).some((e: Json) => e.name === PASSWORD_ENV)) {
    say(`--username without --password-file or ${PASSWORD_ENV}`);
  }

  // The command line of every shard, as the CLI's own parser reads it (each flag's value checked).
  const definition = await loadBackend(kind);
  const count = n ?? spec.completions ?? 1;
  for (let index = 0; index < count; index++) {
    let pod;
    try {
      pod = expandJob(d.doc, index, { namespace: CHECK_NAMESPACE, secrets });
    } catch (error) {
      if (!(error instanceof ExpandError)) throw error;
      say(`pod ${index} would not start: ${error.message}`);
      continue;
    }
    const leftover = pod.args.find((a) => /\$\([A-Za-z_][A-Za-z0-9_]*\)/.test(a));
    if (leftover !== undefined) say(`pod ${index}: '${leftover}' names a variable the container does not have`);
    let values;
    try {
      values = parseCommand(pod.args.slice(1), definition, 'migrate').values;
    } catch (error) {
      say(`pod ${index}: the CLI refuses its arguments: ${(error as Error).message}`);
      continue;
    }
    try {
      const shard = parseShard(values.shard);
      if (shard.index !== index || shard.count !== count) say(`pod ${index} runs shard ${shard.index}/${shard.count}`);
    } catch (error) {
      say(`pod ${index}: the CLI refuses its arguments: ${(error as Error).message}`);
    }
    const sidecar = values.sidecar;
    if (sidecarTarget !== undefined && sidecar !== sidecarTarget)
      say(`pod ${index}: --sidecar is '${String(sidecar)}', not the sidecars' headless Service '${sidecarTarget}'`);
    const graceS = podSpec.terminationGracePeriodSeconds ?? DEFAULT_TERMINATION_GRACE_S;
    const stopGraceS = values['stop-grace'] === undefined ? DEFAULT_STOP_GRACE_S : Number(values['stop-grace']);
    if (index === 0 && !(graceS > stopGraceS)) say(`terminationGracePeriodSeconds ${graceS} s is not above migrate's --stop-grace ${stopGraceS} s`);
    const report = typeof values.report === 'string' ? resolve(pod.workingDir ?? '/data', values.report) : (pod.workingDir ?? '/data');
    if (index === 0 && !under(report, writableMounts(podSpec, container))) say(`the report (${report}) is not on a writable volume`);
  }
  return { problems, kind };
}

/** Everything of part 3, for the given documents. */
export async function propertyProblems(docs: readonly ManifestDoc[], facts: CliFacts): Promise<string[]> {
  const problems: string[] = [];
  const secrets = secretsOf(docs);
  for (const d of docs) if (podTemplateOf(d.doc) !== undefined) problems.push(...podProblems(d, docs, secrets));

  const deployments = docs.filter((d) => d.doc.kind === 'Deployment' && podTemplateOf(d.doc)?.spec?.containers?.[0]?.args?.[0] === 'serve');
  let target: string | undefined;
  if (deployments.length !== 1) {
    problems.push(`deploy/kubernetes: ${deployments.length} Deployments run \`serve\`; want exactly 1`);
  } else {
    const sidecar = sidecarProblems(deployments[0]);
    problems.push(...sidecar.problems);
    if (sidecar.facts !== undefined) {
      const service = serviceProblems(docs, sidecar.facts);
      problems.push(...service.problems);
      if (service.service !== undefined && service.servicePort !== undefined) {
        target = `dns:///${service.service.doc.metadata.name}.${CHECK_NAMESPACE}.svc.cluster.local:${service.servicePort}`;
      }
    }
  }

  const kinds = new Set<string>();
  for (const d of docs.filter((o) => o.doc.kind === 'Job')) {
    const job = await jobProblems(d, facts, secrets, target);
    problems.push(...job.problems);
    if (job.kind !== undefined) kinds.add(SQL_KINDS.has(job.kind) ? 'sql' : job.kind);
  }
  for (const wanted of ['sql', 'cassandra', 'elasticsearch', 'riak']) {
    if (!kinds.has(wanted)) problems.push(`deploy/kubernetes: no migrate Job for ${wanted === 'sql' ? 'an SQL backend' : wanted}`);
  }
  return problems;
}

/** All three parts. */
export async function allProblems(docs: readonly ManifestDoc[], facts: CliFacts): Promise<string[]> {
  return [...(await schemaProblems(docs)), ...(await fieldNameProblems(docs)), ...(await propertyProblems(docs, facts))];
}
