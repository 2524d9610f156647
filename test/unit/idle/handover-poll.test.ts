import t from 'tap';
import { MAX_HANDOVER_POLL_MS, MIN_HANDOVER_POLL_MS, handoverPollMs } from '../../../src/idle/handover-poll.js';

void t.test('a quarter of the idle timeout, between the bounds', async (t) => {
  t.equal(handoverPollMs(2000), 500);
  t.equal(handoverPollMs(0), MIN_HANDOVER_POLL_MS, 'exit as soon as idle');
  t.equal(handoverPollMs(399), MIN_HANDOVER_POLL_MS);
  t.equal(handoverPollMs(300_000), MAX_HANDOVER_POLL_MS, 'the default 5min');
  t.equal(handoverPollMs(null), MAX_HANDOVER_POLL_MS, 'infinity');
});
