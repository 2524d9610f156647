import t from 'tap';
import { eventFromLogLine, firstByteLine, MAX_LOG_LINE, Narrator, type DemoEvent } from '../../../src/demo/narrate.js';

// Records as `podsock run --log-level debug` writes them when stderr is a pipe (copied from a real run).
const REC = {
  start: '{"level":30,"time":1795905244837,"pid":6859,"service":"demo","mode":"proxy","ready":"http","sockets":["listen: TCP 127.0.0.1:8089 (listening)"],"msg":"Starting \'demo\' (standalone)"}',
  listening: '{"level":30,"time":1795905244841,"pid":6859,"service":"demo","msg":"Waiting for the first connection"}',
  podman: '{"level":20,"time":1795905250099,"pid":6859,"service":"demo","argv":"podman run --name podsock-demo --replace --rm localhost/podsock-demo:latest","msg":"Starting podman"}',
  ready: '{"level":30,"time":1795905254742,"pid":6859,"service":"demo","ms":4765,"container":"podsock-demo","mode":"proxy","msg":"Container \'podsock-demo\' ready"}',
  idle: '{"level":30,"time":1795905257766,"pid":6859,"service":"demo","msg":"Idle for 3s: stopping container \'podsock-demo\'"}',
  stopContainer: '{"level":20,"time":1795905257767,"pid":6859,"service":"demo","why":"idle","msg":"Stopping container \'podsock-demo\'"}',
  sigterm: '{"level":30,"time":1795905266783,"pid":6859,"service":"demo","reason":"SIGTERM","msg":"Stopping"}',
  warn: '{"level":40,"time":1,"pid":1,"msg":"podman stop failed, killing podman run"}',
  error: '{"level":50,"time":1,"pid":1,"code":"PODSOCK_ERR_PODMAN","msg":"Failed to start container \'podsock-demo\': image \'x\' is not present locally (podman exit 125)"}',
  fatal: '{"level":60,"time":1,"pid":1,"msg":"boom"}',
};

void t.test('log records become events', async (t) => {
  t.same(eventFromLogLine(REC.listening), { kind: 'listening' });
  t.same(eventFromLogLine(REC.podman), { kind: 'starting' });
  t.same(eventFromLogLine(REC.ready), { kind: 'ready', ms: 4765 });
  t.same(eventFromLogLine(REC.idle), { kind: 'idle' });
  t.same(eventFromLogLine(REC.sigterm), { kind: 'stopping' });
  t.same(eventFromLogLine(REC.warn), { kind: 'problem', level: 'warn', text: 'podman stop failed, killing podman run' });
  t.same(eventFromLogLine(REC.error), {
    kind: 'problem',
    level: 'error',
    text: "Failed to start container 'podsock-demo': image 'x' is not present locally (podman exit 125)",
  });
  t.same(eventFromLogLine(REC.fatal), { kind: 'problem', level: 'fatal', text: 'boom' });
});

void t.test('everything else is no event', async (t) => {
  t.equal(eventFromLogLine(REC.start), null, 'other info records');
  t.equal(eventFromLogLine(REC.stopContainer), null, 'other debug records');
  t.equal(eventFromLogLine(''), null);
  t.equal(eventFromLogLine('time="2026-11-28T22:34:29Z" level=error msg="Waiting for container"'), null, "podman's own stderr");
  t.equal(eventFromLogLine('{"level":30,"msg":"Waiting for the first'), null, 'a truncated record');
  t.equal(eventFromLogLine('[1,2]'), null);
  t.equal(eventFromLogLine('{"msg":"Waiting for the first connection"}'), null, 'no level');
  t.equal(eventFromLogLine('{"level":30,"msg":7}'), null, 'msg not a string');
  t.equal(eventFromLogLine('{"level":30,"msg":"Container \'x\' ready"}'), null, 'ready without ms');
  t.equal(eventFromLogLine('{"level":30,"ms":"12","msg":"Container \'x\' ready"}'), null, 'ms not a number');
  const long = JSON.stringify({ level: 30, msg: 'Waiting for the first connection', pad: 'x'.repeat(MAX_LOG_LINE) });
  t.equal(eventFromLogLine(long), null, 'lines over the limit are not parsed');
});

void t.test('the narrator tells the story in order', async (t) => {
  const n = new Narrator({ url: 'http://127.0.0.1:8089', idleText: '3s' });
  const story: DemoEvent[] = [
    { kind: 'listening' },
    { kind: 'starting' },
    { kind: 'ready', ms: 612.4 },
    { kind: 'idle' },
    { kind: 'listening' },
    { kind: 'starting' },
    { kind: 'ready', ms: 589.6 },
    { kind: 'stopping' },
    { kind: 'problem', level: 'warn', text: 'w' },
    { kind: 'problem', level: 'error', text: 'e' },
  ];
  t.same(
    story.map((ev) => n.line(ev)),
    [
      'podsock is listening on http://127.0.0.1:8089 (nothing running yet)',
      '  connection accepted: podsock starts the container (podman run)',
      '  container started on the first connection (ready in 612 ms)',
      'idle for 3s → stopping the container',
      'container stopped; podsock keeps listening on http://127.0.0.1:8089',
      '  connection accepted: podsock starts the container (podman run)',
      '  container started again (ready in 590 ms)',
      null,
      '  podsock warning: w',
      '  podsock error: e',
    ],
  );
});

void t.test('first-byte lines show the first line of the body, bounded', async (t) => {
  t.equal(firstByteLine('  ', 655.2, 'hello from a socket-activated container\n'), '  first byte after 655 ms: "hello from a socket-activated container"');
  t.equal(firstByteLine('→ ', 3, 'a "quoted"\nsecond'), '→ first byte after 3 ms: "a \\"quoted\\""');
  t.equal(firstByteLine('', 1, 'y'.repeat(100)), `first byte after 1 ms: "${'y'.repeat(77)}..."`);
  t.equal(firstByteLine('', 1, ''), 'first byte after 1 ms: ""');
});
