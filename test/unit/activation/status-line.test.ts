import t from 'tap';
import { CONTAINER_STATUS_MAX, StatusLine, composeStatus } from '../../../src/activation/status-line.js';

void t.test("podsock's text alone until the container says something", async (t) => {
  t.equal(composeStatus('Starting', null), 'Starting');
  t.equal(composeStatus('Starting', ''), 'Starting', 'an empty STATUS= from the container adds nothing');
  t.equal(composeStatus('Serving', 'warming up'), 'Serving; container: warming up');
});

void t.test("the container's part is cut to CONTAINER_STATUS_MAX characters, marked with an ellipsis", async (t) => {
  const long = 'x'.repeat(CONTAINER_STATUS_MAX + 50);
  const line = composeStatus('Serving', long);
  t.equal(line, `Serving; container: ${'x'.repeat(CONTAINER_STATUS_MAX - 1)}…`);
  t.equal(composeStatus('Serving', 'y'.repeat(CONTAINER_STATUS_MAX)), `Serving; container: ${'y'.repeat(CONTAINER_STATUS_MAX)}`, 'exactly the limit is kept whole');
});

void t.test('each side keeps its last text when the other changes', async (t) => {
  const s = new StatusLine();
  t.equal(s.update('Starting container'), 'Starting container');
  t.equal(s.fromContainer('loading'), 'Starting container; container: loading');
  t.equal(s.update('Serving'), 'Serving; container: loading');
  t.equal(s.fromContainer('up'), 'Serving; container: up');
  t.equal(s.text(), 'Serving; container: up');
});
