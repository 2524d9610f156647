import { readFileSync } from 'node:fs';
import t from 'tap';
import { MAN_PAGE_PATH, renderManPage } from '../../../scripts/build-man.js';
import { USAGE } from '../../../src/cli/usage.js';

const version = (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

void t.test('the committed man page is built from the current help texts', async (t) => {
  t.equal(
    readFileSync(MAN_PAGE_PATH, 'utf8'),
    renderManPage(USAGE, version),
    "man/podsock.1 is stale: run 'node --import=@tapjs/typescript/import scripts/build-man.ts' and commit it",
  );
});

void t.test('the page has the usual sections and every option of every command', async (t) => {
  const page = renderManPage(USAGE, version);
  t.match(page, /^\.TH PODSOCK 1 "" "podsock [0-9.]+" "User Commands"$/m);
  for (const s of ['.SH NAME', '.SH SYNOPSIS', '.SH DESCRIPTION', '.SH COMMANDS', '.SH OPTIONS', '.SH "PODSOCK RUN"', '.SH "PODSOCK CHECK"', '.SH "PODSOCK GENERATE"', '.SH SEE ALSO']) {
    t.ok(page.includes(`\n${s}\n`), s);
  }
  t.match(page, /^podsock \\- run Podman containers as socket\\-activated systemd services$/m);
  for (const [c, text] of Object.entries(USAGE)) {
    for (const m of text.matchAll(/^ {2}(-h, )?(--[a-z-]+)/gm)) {
      t.ok(page.includes(`.B ${(m[1] ?? '').replaceAll('-', '\\-')}${(m[2] as string).replaceAll('-', '\\-')}`), `${c} ${m[2]}`);
    }
  }
});

void t.test('roff control characters in the text are escaped', async (t) => {
  const page = renderManPage({ main: "Usage: podsock X\n\n.starts with a dot\n'and a quote\nback\\slash\n", run: 'Usage: r\n', check: 'Usage: c\n', generate: 'Usage: g\n' }, '1.0');
  t.match(page, /\n\\&\.starts with a dot\n\\&'and a quote\nback\\eslash\n/);
});
