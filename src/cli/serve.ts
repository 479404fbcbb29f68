/**
 * `mailgate serve`: runs the daemon until SIGTERM or SIGINT; SIGHUP reloads the configuration.
 * `--check` only validates the configuration file.
 */
import type { Command } from 'commander';
import { type Config, ConfigError, configWarnings } from '../config/index.js';
import { checkTemplate, loadTemplates } from '../notify/index.js';
import { AccessMapError, AccessMapFile, formatAccessMapProblem } from '../policy/index.js';
import { Daemon } from '../serve/index.js';
import { configFromOption } from './services.js';
import { UsageError } from './usage.js';

interface ServeOptions {
  config?: string;
  check?: boolean;
}

export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description(
      'run the daemon: the policy server with greylisting (SIGHUP reloads, SIGTERM stops)',
    )
    .option('-c, --config <file>', 'the TOML configuration file (default: built-in defaults)')
    .option(
      '--check',
      'check the configuration file, its access map and DSN templates, and exit (0 good, 2 bad)',
    )
    .action(async (options: ServeOptions) => {
      if (options.check) {
        const config = await configFromOption(options.config);
        const where = options.config ?? 'defaults';
        await checkFiles(config);
        for (const { key, problem } of configWarnings(config)) {
          process.stderr.write(`${where}: warning: ${key}: ${problem}\n`);
        }
        process.stdout.write(`${where}: configuration is valid\n`);
        return;
      }
      await runDaemon(options.config);
    });
}

/**
 * The files the configuration names are checked as the daemon would read them: the access map
 * (every bad line), the DSN templates (a bad file is an error; unknown placeholders and ignored
 * header fields are warnings).
 */
async function checkFiles(config: Config): Promise<void> {
  if (config.spf.access_file) {
    try {
      await AccessMapFile.load(config.spf.access_file);
    } catch (err) {
      if (err instanceof AccessMapError) {
        throw new UsageError(err.problems.map(formatAccessMapProblem).join('\n'));
      }
      throw new UsageError(`spf.access_file: ${(err as Error).message}`);
    }
  }
  if (config.cbv.enabled) {
    let templates: Awaited<ReturnType<typeof loadTemplates>>;
    try {
      templates = await loadTemplates(config.cbv.templates);
    } catch (err) {
      throw new UsageError(`cbv.templates: ${(err as Error).message}`);
    }
    for (const template of Object.values(templates)) {
      for (const problem of checkTemplate(template)) {
        process.stderr.write(`${problem.source}: warning: ${problem.detail}\n`);
      }
    }
  }
}

async function runDaemon(configPath: string | undefined): Promise<void> {
  // One SIGHUP listener for the whole run: while none is registered, the signal's default action
  // (terminate) applies, so the listener is never swapped. During start-up (logrotate, an eager
  // operator) a SIGHUP is remembered and served once the daemon runs.
  let daemon: Daemon | undefined;
  let hupDuringStart = false;
  const reload = () => {
    if (!daemon) {
      hupDuringStart = true;
      return;
    }
    daemon.logger.info({ signal: 'SIGHUP' }, 'reloading');
    void daemon.reload();
  };
  process.on('SIGHUP', reload);
  try {
    daemon = await Daemon.start(configPath === undefined ? {} : { configPath });
  } catch (err) {
    process.off('SIGHUP', reload);
    if (err instanceof ConfigError) throw new UsageError(err.message);
    throw err;
  }
  const running = daemon;
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) {
        // A second signal while draining: the operator wants out now.
        running.logger.warn({ signal }, 'stop-forced');
        process.exit(1);
      }
      stopping = true;
      running.logger.info({ signal }, 'stopping');
      void running.close().then(resolve, (err: unknown) => {
        running.logger.error({ err }, 'stop-failed');
        resolve();
      });
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    if (hupDuringStart) reload();
  });
}
