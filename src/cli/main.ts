#!/usr/bin/env node
/**
 * The podsock executable: dispatch to a subcommand, log a failure once, exit with the catalogue's status.
 */
import { readFileSync } from 'node:fs';
import { ERROR_CODES, exitStatusFor, isPodsockError } from '../errors.js';
import { stderrIsJournal } from '../log.js';
import { USAGE } from './usage.js';

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(USAGE.main ?? '');
    return command === undefined ? ERROR_CODES.PODSOCK_ERR_USAGE.exit : 0;
  }
  if (command === '--version') {
    process.stdout.write(`podsock ${version()}\n`);
    return 0;
  }
  const wantsHelp = rest.includes('--help') || rest.includes('-h');
  const cut = rest.indexOf('--');
  if (wantsHelp && (cut === -1 || rest.slice(0, cut).some((a) => a === '--help' || a === '-h')) && USAGE[command] !== undefined) {
    process.stdout.write(USAGE[command]);
    return 0;
  }
  switch (command) {
    case 'run': {
      const { runCommand } = await import('./run.js');
      return runCommand({ argv: rest, env: process.env });
    }
    case 'generate': {
      const { generateCommand } = await import('./generate.js');
      return generateCommand({
        argv: rest,
        env: process.env,
        uid: process.getuid?.() ?? 0,
        script: process.argv[1] ?? '',
        execPath: process.execPath,
        stdout: (text) => process.stdout.write(text),
        stderr: (text) => process.stderr.write(text),
      });
    }
    case 'check': {
      const { checkCommand } = await import('./check.js');
      return checkCommand({ argv: rest, env: process.env, uid: process.getuid?.() ?? 0 });
    }
    case 'status': {
      const { statusCommand } = await import('./status.js');
      return statusCommand({ argv: rest, env: process.env, uid: process.getuid?.() ?? 0 });
    }
    case 'auto-update': {
      const { autoUpdateCommand } = await import('./auto-update.js');
      return autoUpdateCommand({ argv: rest, env: process.env, uid: process.getuid?.() ?? 0, stdout: (text) => void process.stdout.write(text) });
    }
    case 'demo': {
      const { demoCommand } = await import('./demo.js');
      return demoCommand({ argv: rest, env: process.env, out: (line) => void process.stdout.write(`${line}\n`) });
    }
    default:
      process.stderr.write(`podsock: unknown command '${command}' (see 'podsock --help')\n`);
      return ERROR_CODES.PODSOCK_ERR_USAGE.exit;
  }
}

// `podsock run` deletes NOTIFY_SOCKET from process.env once it has its notifier, and some
// failures come after that (podman not found): keep the address for the status line below.
const notifySocket = process.env.NOTIFY_SOCKET;

/** Best effort: put the failure in the unit's status line too (systemctl status shows it). */
async function tellSystemd(msg: string): Promise<void> {
  if (notifySocket === undefined) return;
  try {
    const { createNotifier } = await import('../sd/notify-client.js');
    const n = createNotifier({ ...process.env, NOTIFY_SOCKET: notifySocket });
    n.notify([['STATUS', `Failed: ${msg.slice(0, 2000)}`]]);
    n.close();
  } catch {
    // Nothing more to do: the message is already on stderr.
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    // Errors before the logger exists (usage, configuration, sockets) are reported here, once.
    const msg = isPodsockError(err) ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err);
    // On the journal stream the line carries its priority (<3> = error), like every other podsock line.
    process.stderr.write(`${stderrIsJournal(process.env) ? '<3>' : ''}podsock: ${msg}\n`);
    void tellSystemd(msg).finally(() => process.exit(exitStatusFor(err)));
  },
);
