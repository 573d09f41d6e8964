// The `crisp` commands: their help, their options and what each runs (src/cli/main.ts loads this).
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { configFromFlags, configFlagsHelp, CONFIG_OPTIONS } from './options.js';
import { renderConfig } from '../config/load.js';
import { DEFAULTS } from '../config/schema.js';
import { createLogger } from '../log.js';
import { CRISP_VERSION, runDaemon } from '../daemon.js';
import { messageOf } from '../errors.js';
import { optimiseFromNowOn } from './optimising-compiler.js';

const out = (line: string) => process.stdout.write(`${line}\n`);
// `crisp events | head` closes the pipe early: that is the reader's choice, not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

const HELP: Record<string, string> = {
  main: `crisp ${CRISP_VERSION}: a Kubernetes CRI runtime whose pods and containers are event-sourced state machines

Usage: crisp COMMAND [options]

Commands:
  daemon               run the CRI server (foreground)
  config               print the effective configuration as TOML, every key explained
  version              print the version
  events               print the event log
  replay ID            fold one stream through its machine, step by step
  trace ID             a pod's, container's or pull's steps as a waterfall (or Chrome trace JSON)
  salvage --from COPY  salvage the event log of a damaged database kept aside at start

Run 'crisp COMMAND --help' for a command's options.`,
  daemon: `Usage: crisp daemon [options]\n\nRuns the CRI v1 server in the foreground until SIGTERM or SIGINT.\n\n${configFlagsHelp()}`,
  config: `Usage: crisp config [options] [--example]\n\nPrints the configuration that results from defaults, the config file, its drop-ins and the flags.\nWith --example, prints the defaults with every key commented out: the crisp.conf a new node starts from.\n\n${configFlagsHelp()}`,
  version: 'Usage: crisp version\n\nPrints the crisp version and the CRI API version it serves.',
  events: `Usage: crisp events [--stream ID-or-prefix] [--kind sandbox|container|image|pull|runtime] [--since TIME] [--follow] [--json]

Prints the event log of --root (safe while the daemon runs). --since takes an RFC 3339 time
or a duration ago ("10m"). --follow keeps printing new events as they are committed.

  --root PATH     state directory holding state.db (default from the configuration)
  --db FILE       an event log file to read instead (e.g. state.db.example, a copy from a node)
  --config PATH   configuration file to take --root from`,
  replay: `Usage: crisp replay ID-or-prefix [--at TIME | --seq N]

Folds the stream through its machine and prints each transition with the time since the
previous one, then the resulting state. --at (RFC 3339 time) or --seq stops the fold there,
showing the state as it was then.

  --root PATH     state directory holding state.db (default from the configuration)
  --db FILE       an event log file to read instead (e.g. state.db.example)`,
  trace: `Usage: crisp trace ID-or-prefix [--format text|chrome|otlp] [--width N] [--endpoint URL]

Draws a pod sandbox (with its containers), a container or a pull from the event log's own
timestamps: each step as a bar on a shared time axis, with its offset and duration. A step runs
from the event before it to its own event. --format chrome writes Trace Event JSON for
Perfetto (ui.perfetto.dev) or chrome://tracing. --format otlp sends the spans over OTLP/HTTP
to --endpoint, or the configuration's [crisp.tracing] endpoint.

  --root PATH     state directory holding state.db (default from the configuration)
  --db FILE       an event log file to read instead (e.g. state.db.example)`,
  salvage: `Usage: crisp salvage --from KEPT-COPY [--root PATH]

Salvages the event log of a damaged database that crisp kept aside at start
(<root>/state.db.damaged-<time>, its -wal beside it) into a fresh <root>/state.db: every event
row that can still be read is copied unchanged and in order, then the new log is replayed
through the machines, as the daemon will at start. It prints how many events were recovered, how many rows could not be read and which streams
lost history. It refuses if <root>/state.db already holds events, and never changes or removes
the kept copy. Run it with the daemon stopped; crisp can start again afterwards.

  --root PATH     state directory holding state.db (default from the configuration)
  --config PATH   configuration file to take --root from
  --from PATH     a kept-aside copy to salvage the event log from`,
};

const READ_OPTIONS = {
  root: { type: 'string' },
  db: { type: 'string' },
  config: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

function rootFrom(values: { root?: string; config?: string }): string {
  return configFromFlags({ root: values.root, config: values.config }).config.root;
}

async function main(argv: string[]): Promise<number> {
  // Every module this file imports is loaded by now (optimising-compiler.ts says why it waited).
  optimiseFromNowOn();
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    out(HELP.main!);
    return command === undefined ? 2 : 0;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    const help = HELP[command];
    if (!help) throw new Error(`unknown command ${JSON.stringify(command)}; see 'crisp --help'`);
    out(help);
    return 0;
  }
  switch (command) {
    case 'version':
      out(`crisp ${CRISP_VERSION} (CRI runtime API v1)`);
      return 0;
    case 'config': {
      const { values } = parseArgs({ args: rest, options: { ...CONFIG_OPTIONS, example: { type: 'boolean' } }, strict: true });
      if (values.example) out(renderConfig(DEFAULTS, { example: true }));
      else out(renderConfig(configFromFlags(values).config));
      return 0;
    }
    case 'daemon':
      return daemon(rest);
    case 'events': {
      const { values } = parseArgs({
        args: rest,
        options: { ...READ_OPTIONS, stream: { type: 'string' }, kind: { type: 'string' }, since: { type: 'string' }, follow: { type: 'boolean', short: 'f' }, json: { type: 'boolean' } },
        strict: true,
      });
      const { logPath, printEvents } = await import('./events.js');
      const controller = new AbortController();
      process.once('SIGINT', () => controller.abort());
      await printEvents({
        db: logPath(values, () => rootFrom(values)), stream: values.stream, kind: values.kind, since: values.since,
        follow: values.follow ?? false, json: values.json ?? false, out, signal: controller.signal,
        note: (line) => process.stderr.write(`${line}\n`),
      });
      return 0;
    }
    case 'replay': {
      const { values, positionals } = parseArgs({
        args: rest, options: { ...READ_OPTIONS, at: { type: 'string' }, seq: { type: 'string' } }, strict: true, allowPositionals: true,
      });
      if (positionals.length !== 1) throw new Error("replay takes one stream id or prefix; see 'crisp replay --help'");
      if (values.seq !== undefined && !/^\d+$/.test(values.seq)) throw new Error(`--seq ${JSON.stringify(values.seq)}: expected a sequence number`);
      const [{ logPath }, { replay }] = await Promise.all([import('./events.js'), import('./replay.js')]);
      replay({ db: logPath(values, () => rootFrom(values)), idOrPrefix: positionals[0]!, at: values.at, seq: values.seq === undefined ? undefined : Number(values.seq), out });
      return 0;
    }
    case 'trace': {
      const { values, positionals } = parseArgs({
        args: rest, options: { ...READ_OPTIONS, format: { type: 'string' }, width: { type: 'string' }, endpoint: { type: 'string' } }, strict: true, allowPositionals: true,
      });
      if (positionals.length !== 1) throw new Error("trace takes one stream id or prefix; see 'crisp trace --help'");
      const format = values.format ?? 'text';
      const [{ logPath }, { sendTrace, trace }] = await Promise.all([import('./events.js'), import('./trace.js')]);
      if (format === 'otlp') {
        const { config } = configFromFlags({ config: values.config });
        const sent = await sendTrace({ db: logPath(values, () => rootFrom(values)), idOrPrefix: positionals[0]!, endpoint: values.endpoint ?? config.tracingEndpoint });
        out(`sent ${sent} spans to ${values.endpoint ?? config.tracingEndpoint}`);
        return 0;
      }
      if (format !== 'text' && format !== 'chrome') throw new Error(`--format ${JSON.stringify(format)}: expected text, chrome or otlp`);
      const width = values.width === undefined ? undefined : Number(values.width);
      if (width !== undefined && !(Number.isInteger(width) && width >= 10 && width <= 400)) throw new Error(`--width ${JSON.stringify(values.width)}: expected 10 to 400 columns`);
      trace({ db: logPath(values, () => rootFrom(values)), idOrPrefix: positionals[0]!, format, ...(width !== undefined && { width }), out });
      return 0;
    }
    case 'salvage':
    // The command's name before crisp dropped its query tables (schema 3); only --from remains.
    case 'rebuild-projections': {
      const { values } = parseArgs({ args: rest, options: { ...READ_OPTIONS, from: { type: 'string' } }, strict: true });
      if (values.from === undefined) {
        throw new Error(
          command === 'salvage'
            ? '--from KEPT-COPY is required: the damaged copy crisp kept aside (see crisp salvage --help)'
            : 'crisp keeps no query tables since schema 3: its state is the event log, replayed at every start, so there is nothing to rebuild. To salvage a damaged log: crisp salvage --from KEPT-COPY',
        );
      }
      const [{ EventStore }, { openWriter }, { describeSalvage, salvageLog }] = await Promise.all([
        import('../events/store.js'), import('../events/database.js'), import('../events/salvage.js'),
      ]);
      const report = salvageLog({
        from: values.from,
        to: join(rootFrom(values), 'state.db'),
        create: (path) => openWriter(path),
        replay: (path) => {
          const salvaged = EventStore.open(path);
          const events = salvaged.replayedEvents;
          salvaged.close();
          return events;
        },
      });
      for (const line of describeSalvage(report)) out(line);
      return 0;
    }
    default:
      throw new Error(`unknown command ${JSON.stringify(command)}; see 'crisp --help'`);
  }
}

async function daemon(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: CONFIG_OPTIONS, strict: true });
  const { config, files } = configFromFlags(values);
  const logger = createLogger(config.logLevel);
  logger.info({ files }, 'configuration loaded');
  const running = await runDaemon(config, logger);
  await new Promise<void>((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      logger.info({ signal }, 'shutting down');
      running.stop().then(resolve, (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        resolve();
      });
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
  });
  return 0;
}

/** Runs one `crisp` command line; its outcome becomes the process's exit code. */
export async function runCommand(argv: string[]): Promise<void> {
  try {
    process.exitCode = await main(argv);
  } catch (err) {
    process.stderr.write(`crisp: ${messageOf(err)}\n`);
    process.exitCode = 1;
  }
}
