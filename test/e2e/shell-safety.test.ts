/**
 * Configuration values never reach a shell: `podsock run` (standalone, real podman, the fixture
 * image) starts test/fixtures/env-echo.js with Environment= values and Exec= arguments full of shell
 * syntax - quotes, $(...), backticks, ';', '|', redirections, globs, spaces, systemd '\n' escapes - and
 * the container reports what it got. Every value must arrive exactly as the .container file says
 * (after systemd's own unquoting and unescaping, systemd.syntax(7)), and none of the commands hidden in
 * them may have run: they would create files in a directory that is mounted into the container at the
 * same path, so a shell on either side of podman would leave a trace.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, openSync, closeSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { childEnv, containerExists, freePort, hostEnv, httpGet, logFile, podman, readLog, uniqueName, waitFor } from './harness.js';
import { podsockBin } from './podsock-units.js';

const h = hostEnv(t);

/** A word for a systemd command line or list setting: double-quoted, with '\' and '"' escaped. */
function quoteWord(word: string): string {
  return `"${word.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

if (h !== null) {
  await t.test('Environment= and Exec= values arrive in the container exactly as written; no shell runs', async (t) => {
    const name = uniqueName('shell');
    const containerName = `podsock-${name}`;
    const marks = mkdtempSync(join(tmpdir(), 'podsock-shell-'));
    t.teardown(() => rmSync(marks, { recursive: true, force: true }));
    const configDir = mkdtempSync(join(h.stateDir, 'shell-'));
    t.teardown(() => rmSync(configDir, { recursive: true, force: true }));
    const M = marks;

    // Control: a shell that does run in a container with this mount leaves its marker where we look.
    const control = await podman(h, 'run', '--rm', '--network=none', ...h.podmanRunArgs, '-v', `${M}:${M}`, h.fixtureImage, '/bin/sh', '-c', `touch ${M}/control`);
    t.equal(control.exitCode, 0, `the control container ran${control.exitCode === 0 ? '' : `: ${control.stderr.trim()}`}`);
    t.same(readdirSync(M), ['control'], 'a shell in the container leaves a marker on the host');
    rmSync(join(M, 'control'));

    // Left: the line in the .container file (systemd syntax). Right: the value the container must see.
    const env: Array<[string, string, string]> = [
      ['SAFE_SQ', String.raw`Environment="SAFE_SQ=it's a 'quoted' value"`, "it's a 'quoted' value"],
      ['SAFE_DQ', String.raw`Environment='SAFE_DQ=say "hi" twice ""'`, 'say "hi" twice ""'],
      ['SAFE_SUBST', `Environment="SAFE_SUBST=$(touch ${M}/env-subst)"`, `$(touch ${M}/env-subst)`],
      ['SAFE_BT', `Environment="SAFE_BT=\`touch ${M}/env-bt\`"`, `\`touch ${M}/env-bt\``],
      ['SAFE_SEMI', `Environment="SAFE_SEMI=a; touch ${M}/env-semi; echo b"`, `a; touch ${M}/env-semi; echo b`],
      ['SAFE_PIPE', `Environment="SAFE_PIPE=x | touch ${M}/env-pipe && y || z > ${M}/env-redirect &"`, `x | touch ${M}/env-pipe && y || z > ${M}/env-redirect &`],
      ['SAFE_SPACES', String.raw`Environment="SAFE_SPACES=  two  spaces  "`, '  two  spaces  '],
      ['SAFE_NL', String.raw`Environment="SAFE_NL=line1\nline2\n" SAFE_TAB=a\tb`, 'line1\nline2\n'],
      ['SAFE_TAB', '', 'a\tb'],
      ['SAFE_DOLLAR', 'Environment="SAFE_DOLLAR=$HOME ${PATH} $$ $0 $1"', '$HOME ${PATH} $$ $0 $1'],
      ['SAFE_GLOB', String.raw`Environment="SAFE_GLOB=* ?.js [a-z] ~"`, '* ?.js [a-z] ~'],
      ['SAFE_BACKSLASH', String.raw`Environment="SAFE_BACKSLASH=a\\b\\\\c\""`, 'a\\b\\\\c"'],
      ['SAFE_UNICODE', String.raw`Environment="SAFE_UNICODE=héllo ✓ \u00e9\x41"`, 'héllo ✓ éA'],
      ['SAFE_FLAG', 'Environment=SAFE_FLAG=--privileged', '--privileged'],
      ['SAFE_EQ', 'Environment=SAFE_EQ=a=b=c', 'a=b=c'],
      ['SAFE_EMPTY', 'Environment=SAFE_EMPTY=', ''],
    ];
    // Exec= words, each written double-quoted and escaped (the way a user quotes an argument).
    const argv = [
      "it's",
      'say "hi"',
      `$(touch ${M}/arg-subst)`,
      `\`touch ${M}/arg-bt\``,
      `a; touch ${M}/arg-semi`,
      `x | touch ${M}/arg-pipe`,
      '  spaced  ',
      'l1\nl2',
      '',
      '$HOME',
      '*',
      'a\\b',
      '--privileged',
      '-v=/:/host',
      ';',
      '&&',
      '>',
      `${M}/arg-redirect`,
    ];
    // '\n' in a word has to be written as the escape; quoteWord() leaves a raw newline, so fix that one up.
    const execWords = argv.map((w) => quoteWord(w).replace(/\n/g, '\\n'));
    const vol = h.podmanRunArgs[0] === '-v' && h.podmanRunArgs[1] !== undefined ? [`Volume=${h.podmanRunArgs[1]}`] : [];
    const file = join(configDir, `${name}.container`);
    writeFileSync(
      file,
      [
        '[Container]',
        `Image=${h.fixtureImage}`,
        'Network=none',
        'Pull=never',
        ...vol,
        `Volume=${M}:${M}`,
        ...env.map(([, line]) => line).filter((l) => l !== ''),
        // The one shell-looking word that is not quoted: unquoted words must be just as inert.
        `Exec=/usr/bin/node /app/env-echo.js ${execWords.join(' ')} unquoted$(id)`,
        '',
      ].join('\n'),
    );

    const port = await freePort();
    const log = logFile(h, name);
    const out = openSync(log, 'a');
    const podsock = spawn(process.execPath, [podsockBin, 'run', name, '--config', file, '--listen', `127.0.0.1:${port}`, '--idle-timeout', '3s'], {
      env: childEnv(h),
      stdio: ['ignore', out, out],
    });
    closeSync(out);
    const exited = new Promise<number | null>((resolve) => podsock.once('exit', (code) => resolve(code)));
    t.teardown(async () => {
      podsock.kill('SIGKILL');
      await podman(h, 'rm', '--force', '--ignore', containerName);
    });

    const reply = await waitFor('env-echo to answer through podsock', async () => {
      const r = await httpGet(`http://127.0.0.1:${port}/`, 30_000);
      return r.status === 200 ? r.body : false;
    }, 120_000, 250).catch((err: Error) => {
      throw new Error(`${err.message}\n--- podsock log ---\n${readLog(log)}`);
    });
    const got = JSON.parse(reply) as { env: Record<string, string>; argv: string[] };

    for (const [key, , expected] of env) {
      t.equal(got.env[key], expected, `${key} arrives as written`);
      t.ok(Buffer.from(got.env[key] ?? '\0', 'utf8').equals(Buffer.from(expected, 'utf8')), `${key}: the same bytes`);
    }
    t.same(Object.keys(got.env).sort(), env.map(([key]) => key).sort(), 'no other SAFE_* variable appeared');
    t.same(got.argv, [...argv, 'unquoted$(id)'], 'Exec= arguments arrive as written, one argv element per word');
    for (const [i, word] of argv.entries()) {
      t.ok(Buffer.from(got.argv[i] ?? '\0', 'utf8').equals(Buffer.from(word, 'utf8')), `argument ${i}: the same bytes`);
    }

    podsock.kill('SIGTERM');
    const code = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 60_000).unref())]);
    t.equal(code, 0, 'podsock stops cleanly on SIGTERM');
    t.equal(await containerExists(h, containerName), false, 'no container left');
    t.same(readdirSync(marks), [], 'none of the commands in the values ran (no marker file on either side of podman)');
  });
}
