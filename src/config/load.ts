import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseToml, TomlError } from 'smol-toml';
import { DEFAULTS, KEYS, RUNTIME_TABLE_KEYS, RUNTIMES_SECTION, SECTIONS, type CrispConfig, type KeySpec, type RuntimeTable } from './schema.js';
import { CrispError } from '../errors.js';

const DEFAULT_CONFIG_PATH = '/etc/crisp/crisp.conf';

class ConfigError extends CrispError {
  constructor(message: string) {
    super('InvalidArgument', message);
  }
}

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];
const DURATION_PART = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Go-style durations as CRI-O's config uses them: "500ms", "30s", "5m", "1h30m". */
export function parseDuration(text: string): number | undefined {
  if (!/^((\d+(\.\d+)?)(ms|s|m|h))+$/.test(text)) return text === '0' ? 0 : undefined;
  let total = 0;
  for (const [, amount, unit] of text.matchAll(DURATION_PART)) total += Number(amount) * UNIT_MS[unit!]!;
  return Math.round(total);
}

function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

/**
 * Turns one raw value (from TOML, or a flag's text) into the key's type. `where` names the
 * file or flag, so every error says which key in which place is wrong.
 */
function parseValue(spec: KeySpec, raw: unknown, where: string, fromFlag = false): unknown {
  const name = `${spec.section}.${spec.key}`;
  const fail = (expected: string): never => {
    throw new ConfigError(`${where}: ${name} = ${JSON.stringify(raw)} is invalid: expected ${expected}`);
  };
  switch (spec.type) {
    case 'string':
    case 'path':
      if (typeof raw !== 'string' || raw === '') fail('a non-empty string');
      if (spec.type === 'path' && !(raw as string).startsWith('/')) fail('an absolute path');
      return raw;
    case 'paths': {
      const list = fromFlag && typeof raw === 'string' ? raw.split(',') : raw;
      if (!Array.isArray(list) || list.some((p) => typeof p !== 'string' || !p.startsWith('/'))) {
        fail('a list of absolute paths');
      }
      return list;
    }
    case 'int': {
      const n = fromFlag && typeof raw === 'string' && /^-?\d+$/.test(raw) ? Number(raw) : raw;
      if (typeof n !== 'number' || !Number.isInteger(n)) fail('an integer');
      const value = n as number;
      if ((spec.min !== undefined && value < spec.min) || (spec.max !== undefined && value > spec.max)) {
        fail(`an integer from ${spec.min} to ${spec.max}`);
      }
      return value;
    }
    case 'bool': {
      const b = fromFlag && typeof raw === 'string' ? ({ true: true, false: false } as Record<string, boolean>)[raw] : raw;
      if (typeof b !== 'boolean') fail('true or false');
      return b;
    }
    case 'duration': {
      const ms = typeof raw === 'string' ? parseDuration(raw) : undefined;
      if (ms === undefined) fail('a duration such as "30s", "5m" or "1h30m"');
      return ms;
    }
    case 'level':
      if (typeof raw !== 'string' || !LEVELS.includes(raw)) fail(LEVELS.join(', '));
      return raw;
    case 'address':
      if (typeof raw !== 'string' || !/^[^\s]+:\d{1,5}$/.test(raw) || Number(raw.split(':').at(-1)) > 65535) fail('host:port');
      return raw;
    case 'cgroup-driver':
      if (raw !== 'cgroupfs') fail('"cgroupfs" (the only driver crisp implements)');
      return raw;
  }
}

function sectionTable(doc: Record<string, unknown>, section: string): unknown {
  return section.split('.').reduce<unknown>((node, part) => (node && typeof node === 'object' ? (node as Record<string, unknown>)[part] : undefined), doc);
}

/** Applies one TOML file on top of `config`; unknown sections and keys are errors, not silence. */
export function applyFile(config: CrispConfig, file: string): CrispConfig {
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    const detail = err instanceof TomlError ? `line ${err.line}, column ${err.column}: ${err.message.split('\n')[0]}` : String(err);
    throw new ConfigError(`${file}: not valid TOML (${detail})`);
  }
  checkUnknown(doc, file);
  const out: CrispConfig = { ...config };
  for (const spec of KEYS) {
    const table = sectionTable(doc, spec.section);
    if (table === undefined) continue;
    if (typeof table !== 'object' || table === null || Array.isArray(table)) {
      throw new ConfigError(`${file}: [${spec.section}] must be a table`);
    }
    const raw = (table as Record<string, unknown>)[spec.key];
    if (raw !== undefined) (out as unknown as Record<string, unknown>)[spec.prop] = parseValue(spec, raw, file);
  }
  const runtimes = sectionTable(doc, RUNTIMES_SECTION);
  if (runtimes !== undefined) out.runtimes = { ...config.runtimes, ...parseRuntimes(runtimes, file) };
  return out;
}

// A RuntimeClass handler is a DNS label (Kubernetes validates RuntimeClass.handler so).
const HANDLER_NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** [crisp.runtime.runtimes.NAME] tables: one per RuntimeClass handler beside the default. */
function parseRuntimes(node: unknown, file: string): Record<string, RuntimeTable> {
  if (typeof node !== 'object' || node === null || Array.isArray(node)) throw new ConfigError(`${file}: [${RUNTIMES_SECTION}] must be a table`);
  const out: Record<string, RuntimeTable> = {};
  for (const [name, table] of Object.entries(node)) {
    const where = `${RUNTIMES_SECTION}.${name}`;
    if (!HANDLER_NAME.test(name)) throw new ConfigError(`${file}: [${where}]: a handler name must be a DNS label (lower-case letters, digits and '-')`);
    if (typeof table !== 'object' || table === null || Array.isArray(table)) throw new ConfigError(`${file}: [${where}] must be a table`);
    const entry: Partial<RuntimeTable> = {};
    for (const [key, value] of Object.entries(table as Record<string, unknown>)) {
      const spec = RUNTIME_TABLE_KEYS[key];
      if (!spec) throw new ConfigError(`${file}: unknown key ${where}.${key} (known: ${Object.keys(RUNTIME_TABLE_KEYS).join(', ')})`);
      if (typeof value !== 'string' || value === '') throw new ConfigError(`${file}: ${where}.${key} = ${JSON.stringify(value)} is invalid: expected a non-empty string`);
      if (key === 'runtime_root' && !value.startsWith('/')) throw new ConfigError(`${file}: ${where}.${key} = ${JSON.stringify(value)} is invalid: expected an absolute path`);
      entry[spec.prop] = value;
    }
    if (!entry.runtimePath) throw new ConfigError(`${file}: [${where}] needs runtime_path`);
    out[name] = entry as RuntimeTable;
  }
  return out;
}

function checkUnknown(doc: Record<string, unknown>, file: string): void {
  const known = new Set(KEYS.map((k) => `${k.section}.${k.key}`));
  const walk = (node: Record<string, unknown>, prefix: string) => {
    for (const [key, value] of Object.entries(node)) {
      const path = prefix ? `${prefix}.${key}` : key;
      if (path === RUNTIMES_SECTION) continue; // parseRuntimes checks its own tables
      if (SECTIONS.includes(path) || SECTIONS.some((s) => s.startsWith(`${path}.`))) {
        if (typeof value !== 'object' || value === null || Array.isArray(value)) {
          throw new ConfigError(`${file}: [${path}] must be a table`);
        }
        walk(value as Record<string, unknown>, path);
      } else if (!known.has(path)) {
        throw new ConfigError(`${file}: unknown key ${path}`);
      }
    }
  };
  walk(doc, '');
}

export interface LoadOptions {
  /** Main config file; a missing file at the default path means "defaults only". */
  configPath?: string;
  /** Flag values as typed by the user, keyed by flag name without dashes. */
  flags?: Record<string, string | string[] | boolean | undefined>;
}

/** Defaults, then crisp.conf, then crisp.conf.d/*.conf in lexical order, then flags. */
export function loadConfig(options: LoadOptions = {}): { config: CrispConfig; files: string[] } {
  const configPath = options.configPath ?? DEFAULT_CONFIG_PATH;
  const files: string[] = [];
  let config: CrispConfig = { ...DEFAULTS, cniPluginDirs: [...DEFAULTS.cniPluginDirs], runtimes: { ...DEFAULTS.runtimes } };
  if (existsSync(configPath)) files.push(configPath);
  else if (options.configPath !== undefined && options.configPath !== DEFAULT_CONFIG_PATH) {
    throw new ConfigError(`${configPath}: no such configuration file`);
  }
  const dropInDir = `${configPath}.d`;
  if (existsSync(dropInDir)) {
    files.push(...readdirSync(dropInDir).filter((f) => f.endsWith('.conf')).sort().map((f) => join(dropInDir, f)));
  }
  for (const file of files) config = applyFile(config, file);
  for (const spec of KEYS) {
    if (!spec.flag) continue;
    const raw = options.flags?.[spec.flag];
    if (raw === undefined) continue;
    const value = Array.isArray(raw) && spec.type !== 'paths' ? raw.at(-1) : Array.isArray(raw) ? raw.flatMap((r) => r.split(',')) : raw;
    (config as unknown as Record<string, unknown>)[spec.prop] = parseValue(spec, typeof value === 'boolean' ? String(value) : value, `--${spec.flag}`, true);
  }
  return { config, files };
}

/**
 * The configuration as TOML, every key explained. `example` renders the file `npm run
 * install-service` writes: the defaults, each key commented out so later defaults still apply.
 */
export function renderConfig(config: CrispConfig, options: { example?: boolean } = {}): string {
  const lines = [options.example
    ? '# crisp.conf: every key with its default, commented out. Uncomment a key to change it; drop-ins go in crisp.conf.d/*.conf.'
    : '# crisp configuration: defaults, /etc/crisp/crisp.conf, its .d drop-ins and flags, merged.', ''];
  for (const section of SECTIONS) {
    lines.push(`[${section}]`);
    for (const spec of KEYS.filter((k) => k.section === section)) {
      const value = config[spec.prop];
      lines.push(`# ${spec.doc}${spec.flag ? ` (flag: --${spec.flag})` : ''}`);
      lines.push(`${options.example ? '# ' : ''}${spec.key} = ${spec.type === 'duration' ? JSON.stringify(formatDuration(value as number)) : JSON.stringify(value)}`);
    }
    lines.push('');
  }
  lines.push(...renderRuntimes(config, options.example === true));
  return lines.join('\n');
}

function renderRuntimes(config: CrispConfig, example: boolean): string[] {
  const lines = [
    `# RuntimeClass handlers beside the default, one [${RUNTIMES_SECTION}.NAME] table each. With none configured,`,
    '# a "crun" handler is offered when crun is installed.',
  ];
  const tables: [string, RuntimeTable][] = example ? [['crun', { runtimePath: 'crun' }]] : Object.entries(config.runtimes);
  for (const [name, table] of tables) {
    const c = example ? '# ' : '';
    lines.push(`${c}[${RUNTIMES_SECTION}.${name}]`);
    for (const [key, spec] of Object.entries(RUNTIME_TABLE_KEYS)) {
      const value = table[spec.prop];
      lines.push(`# ${spec.doc}`);
      if (value !== undefined) lines.push(`${c}${key} = ${JSON.stringify(value)}`);
    }
  }
  lines.push('');
  return lines;
}
