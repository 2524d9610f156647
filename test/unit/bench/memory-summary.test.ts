import t from 'tap';
import { formatBreakdown, formatTable, groupMean, markdownTable, mib, roleNames, rolesCell, total, type ServiceMemory } from '../../../scripts/bench/memory-summary.js';

// KiB. Service a keeps podsock's node, an attached podman and conmon; service b only node and conmon.
const A: ServiceMemory = {
  unit: 'a',
  processes: [
    { pid: 30, comm: 'conmon', pss: 1000, uss: 800 },
    { pid: 10, comm: 'node', pss: 20000, uss: 12000 },
    { pid: 11, comm: 'podman', pss: 30000, uss: 20000 },
  ],
};
const B: ServiceMemory = {
  unit: 'b',
  processes: [
    { pid: 40, comm: 'node', pss: 18000, uss: 11000 },
    { pid: 41, comm: 'conmon', pss: 600, uss: 400 },
  ],
};

void t.test('total adds PSS and USS', async (t) => {
  t.same(total(A.processes), { pss: 51000, uss: 32800 });
  t.same(total([]), { pss: 0, uss: 0 });
});

void t.test('roleNames numbers repeated commands in pid order', async (t) => {
  const p = [
    { pid: 9, comm: 'podman', pss: 1, uss: 1 },
    { pid: 3, comm: 'podman', pss: 1, uss: 1 },
    { pid: 5, comm: 'conmon', pss: 1, uss: 1 },
  ];
  const names = roleNames(p);
  t.equal(names.get(p[1] as (typeof p)[number]), 'podman');
  t.equal(names.get(p[0] as (typeof p)[number]), 'podman#2');
  t.equal(names.get(p[2] as (typeof p)[number]), 'conmon');
});

void t.test('groupMean: totals averaged over services, roles over the services that have them', async (t) => {
  const m = groupMean([A, B]);
  t.equal(m.services, 2);
  t.equal(m.pss, (51000 + 18600) / 2);
  t.equal(m.uss, (32800 + 11400) / 2);
  t.equal(m.processes, 2.5);
  t.same(m.roles, [
    { name: 'node', services: 2, pss: 19000, uss: 11500 },
    { name: 'podman', services: 1, pss: 30000, uss: 20000 },
    { name: 'conmon', services: 2, pss: 800, uss: 600 },
  ]);
  const alone = groupMean([B]);
  t.same({ pss: alone.pss, uss: alone.uss, processes: alone.processes }, { pss: 18600, uss: 11400, processes: 2 });
  t.throws(() => groupMean([]), { message: 'groupMean of no services' });
});

void t.test('mib: KiB to MiB with about three significant digits', async (t) => {
  t.equal(mib(46387), '45.3');
  t.equal(mib(532), '0.52');
  t.equal(mib(1024 * 150.4), '150');
  t.equal(mib(0), '0.00');
});

void t.test('rolesCell marks roles some services lack and an uneven process count', async (t) => {
  t.equal(rolesCell(groupMean([A, B])), '2.50: node, podman (1/2), conmon');
  t.equal(rolesCell(groupMean([B, B])), 'node, conmon');
});

void t.test('markdownTable pads every column and adds the separator line', async (t) => {
  t.equal(
    markdownTable([
      ['a', 'long header'],
      ['value', 'x'],
    ]),
    ['| a     | long header |', '| ----- | ----------- |', '| value | x           |'].join('\n'),
  );
  t.equal(markdownTable([]), '');
});

void t.test('formatTable: one row per variant and scenario, sizes in MiB', async (t) => {
  const rows = [
    { variant: 'podsock-proxy', scenario: '2 services, 1 request', mean: groupMean([A, B]) },
    { variant: 'quadlet', scenario: '1 service, after load', mean: groupMean([{ unit: 'q', processes: [{ pid: 7, comm: 'conmon', pss: 640, uss: 340 }] }]) },
  ];
  t.equal(
    formatTable(rows),
    [
      '| variant       | scenario              | processes kept                   | PSS per service MiB | USS per service MiB |',
      '| ------------- | --------------------- | -------------------------------- | ------------------- | ------------------- |',
      '| podsock-proxy | 2 services, 1 request | 2.50: node, podman (1/2), conmon | 34.0                | 21.6                |',
      '| quadlet       | 1 service, after load | conmon                           | 0.63                | 0.33                |',
    ].join('\n'),
  );
  const breakdown = formatBreakdown(rows).split('\n');
  t.same(breakdown, [
    'podsock-proxy, 2 services, 1 request:',
    '  node             PSS   18.6  USS   11.2 MiB',
    '  podman           PSS   29.3  USS   19.5 MiB (in 1 of 2 services)',
    '  conmon           PSS   0.78  USS   0.59 MiB',
    '  total            PSS   34.0  USS   21.6 MiB per service',
    'quadlet, 1 service, after load:',
    '  conmon           PSS   0.63  USS   0.33 MiB',
    '  total            PSS   0.63  USS   0.33 MiB per service',
  ]);
});
