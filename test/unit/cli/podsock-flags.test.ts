import { readFileSync } from 'node:fs';
import t from 'tap';
import { PODSOCK_KEY_DESCRIPTORS } from '../../../src/config/podsock-keys.js';
import { parseArgs } from '../../../src/cli/args.js';
import { GENERATE_FLAGS } from '../../../src/cli/generate.js';
import { KEY_OF_FLAG, PODSOCK_FLAGS, optionHelp, podsockFlags } from '../../../src/cli/podsock-flags.js';
import { RUN_FLAGS } from '../../../src/cli/run.js';
import { USAGE } from '../../../src/cli/usage.js';

const manPage = readFileSync(new URL('../../../man/podsock.1', import.meta.url), 'utf8');

void t.test('every key has its flag in run and generate, a help line in both, and an entry in the man page', async (t) => {
  for (const d of PODSOCK_KEY_DESCRIPTORS) {
    const name = d.flag.slice(2);
    t.same(RUN_FLAGS[name], { value: true }, `run ${d.flag}`);
    t.same(GENERATE_FLAGS[name], { value: true }, `generate ${d.flag}`);
    t.equal(KEY_OF_FLAG[name], d.key);
    for (const c of ['run', 'generate']) t.ok(USAGE[c]?.includes(optionHelp(d).join('\n')), `${c} --help shows ${d.flag}`);
    t.ok(manPage.includes(`.B ${d.flag.replaceAll('-', '\\-')} ${d.metavar}\n`), `man page: ${d.flag}`);
    t.ok(manPage.includes(`(${d.key}=)`), `man page: ${d.key}=`);
  }
  t.equal(Object.keys(PODSOCK_FLAGS).length, PODSOCK_KEY_DESCRIPTORS.length);
});

void t.test('flags become key settings', async (t) => {
  const p = parseArgs(['web', '--mode', 'proxy', '--connection-idle-timeout=30s', '--listen', '8080'], { ...PODSOCK_FLAGS, listen: { value: true } }, 'run');
  t.same(podsockFlags(p), { Mode: 'proxy', ConnectionIdleTimeout: '30s' });
});

void t.test('the help layout: description at column 27 or on the next line, the key at column 80 or ending at 97', async (t) => {
  const byKey = new Map(PODSOCK_KEY_DESCRIPTORS.map((d) => [d.key, d]));
  const mode = byKey.get('Mode');
  const conn = byKey.get('ConnectionIdleTimeout');
  if (mode === undefined || conn === undefined) throw new Error('keys missing');
  t.same(optionHelp(mode), ['  --mode MODE              handover (default) or proxy                          (Mode=)']);
  t.same(optionHelp(conn), [
    '  --connection-idle-timeout SPAN',
    '                           Proxy mode: close a connection idle this long;',
    '                           default off                                   (ConnectionIdleTimeout=)',
  ]);
});
