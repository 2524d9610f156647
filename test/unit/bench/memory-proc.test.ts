import { readFileSync } from 'node:fs';
import t from 'tap';
import { cgroupMembers, keptProcesses, parseSmapsRollup, parseStat, subtree, unifiedCgroup } from '../../../scripts/bench/memory-proc.js';

// Verbatim /proc/PID/smaps_rollup of processes a benchmark service kept on the project's machine
// (Linux 6.18, Debian 12): podsock's node in proxy mode, its conmon, and systemd-socket-proxyd.
const NODE_ROLLUP = `00400000-7ffe093b7000 ---p 00000000 00:00 0                              [rollup]
Rss:               51920 kB
Pss:               20780 kB
Pss_Dirty:         10292 kB
Pss_Anon:          10280 kB
Pss_File:          10500 kB
Pss_Shmem:             0 kB
Shared_Clean:      40344 kB
Shared_Dirty:          0 kB
Private_Clean:      1284 kB
Private_Dirty:     10292 kB
Referenced:        51920 kB
Anonymous:         10280 kB
KSM:                   0 kB
LazyFree:              0 kB
AnonHugePages:         0 kB
ShmemPmdMapped:        0 kB
FilePmdMapped:         0 kB
Shared_Hugetlb:        0 kB
Private_Hugetlb:       0 kB
Swap:                  0 kB
SwapPss:               0 kB
Locked:                0 kB
`;

const CONMON_ROLLUP = `55d879c05000-7ffc6217e000 ---p 00000000 00:00 0                          [rollup]
Rss:                1956 kB
Pss:                1111 kB
Pss_Dirty:           336 kB
Pss_Anon:            336 kB
Pss_File:            775 kB
Pss_Shmem:             0 kB
Shared_Clean:        936 kB
Shared_Dirty:          0 kB
Private_Clean:       684 kB
Private_Dirty:       336 kB
Referenced:         1752 kB
Anonymous:           336 kB
KSM:                   0 kB
LazyFree:              0 kB
AnonHugePages:         0 kB
ShmemPmdMapped:        0 kB
FilePmdMapped:         0 kB
Shared_Hugetlb:        0 kB
Private_Hugetlb:       0 kB
Swap:                  0 kB
SwapPss:               0 kB
Locked:                0 kB
`;

const PROXYD_ROLLUP = `558fc5567000-7ffe0cb3b000 ---p 00000000 00:00 0                          [rollup]
Rss:                7056 kB
Pss:                2547 kB
Pss_Dirty:           924 kB
Pss_Anon:            924 kB
Pss_File:           1623 kB
Pss_Shmem:             0 kB
Shared_Clean:       6040 kB
Shared_Dirty:          0 kB
Private_Clean:        92 kB
Private_Dirty:       924 kB
Referenced:         7056 kB
Anonymous:           924 kB
KSM:                   0 kB
LazyFree:              0 kB
AnonHugePages:         0 kB
ShmemPmdMapped:        0 kB
FilePmdMapped:         0 kB
Shared_Hugetlb:        0 kB
Private_Hugetlb:       0 kB
Swap:                  0 kB
SwapPss:               0 kB
Locked:                0 kB
`;

// Verbatim /proc/PID/stat of the same node and conmon (conmon is a child of podsock there) and of proxyd,
// whose 15-byte comm is cut in the middle of its name.
const NODE_STAT =
  '13432 (node) S 2936 13432 13432 0 -1 4194560 3550 6401 4 13 6 1 6 1 20 0 7 0 902385 1025859584 12901 18446744073709551615 11988992 39846385 140729053307936 0 0 0 0 16781312 17922 0 0 0 17 1 0 0 0 0 0 90418888 90555584 106856448 140729053310184 140729053310256 140729053310256 140729053310954 0\n';
const CONMON_STAT =
  '13471 (conmon) S 13432 13471 13471 0 -1 4194368 64 995 0 2 0 0 0 1 20 0 1 0 902422 9080832 472 18446744073709551615 94388243959808 94388244000793 140721954210672 0 0 0 66048 4096 16390 1 0 0 17 1 0 0 0 0 0 94388244031720 94388244101604 94388664582144 140721954216102 140721954217722 140721954217722 140721954217960 0\n';
const PROXYD_STAT =
  '14219 (systemd-socket-) S 2936 14219 14219 0 -1 4194560 480 0 0 0 0 0 0 0 20 0 2 0 905844 92254208 1741 18446744073709551615 94075979468800 94075979477701 140729111520128 0 0 0 0 4096 0 0 0 0 17 0 0 0 0 0 0 94075979492080 94075979493396 94076044361728 140729111522879 140729111522930 140729111522930 140729111523285 0\n';

void t.test('parseSmapsRollup: PSS, and USS = Private_Clean + Private_Dirty, in KiB', async (t) => {
  t.same(parseSmapsRollup(NODE_ROLLUP), { pss: 20780, uss: 1284 + 10292 });
  t.same(parseSmapsRollup(CONMON_ROLLUP), { pss: 1111, uss: 684 + 336 });
  t.same(parseSmapsRollup(PROXYD_ROLLUP), { pss: 2547, uss: 92 + 924 });
});

void t.test('parseSmapsRollup takes Pss: itself, not Pss_Dirty: or SwapPss:, wherever they stand', async (t) => {
  const shuffled = ['SwapPss:             7 kB', 'Pss_Dirty:         999 kB', 'Private_Dirty:       5 kB', 'Pss:                11 kB', 'Private_Clean:       3 kB', ''].join('\n');
  t.same(parseSmapsRollup(shuffled), { pss: 11, uss: 8 });
});

void t.test('parseSmapsRollup refuses a rollup without the fields (zombie, kernel thread)', async (t) => {
  t.throws(() => parseSmapsRollup(''), { message: "No 'Pss' line in smaps_rollup: ''" });
  t.throws(() => parseSmapsRollup(NODE_ROLLUP.replace(/^Private_Dirty:.*\n/m, '')), /No 'Private_Dirty' line/);
  t.throws(() => parseSmapsRollup(NODE_ROLLUP.replace('Private_Clean:      1284 kB', 'Private_Clean:      1284 MB')), /No 'Private_Clean' line/);
});

void t.test('parseSmapsRollup reads the real file of this process', async (t) => {
  const text = readFileSync('/proc/self/smaps_rollup', 'utf8');
  const f = parseSmapsRollup(text);
  const rss = Number(/^Rss:\s+(\d+) kB$/m.exec(text)?.[1]);
  t.ok(f.pss > 0 && f.uss > 0, 'a Node process has private memory');
  t.ok(f.uss <= f.pss && f.pss <= rss, 'USS <= PSS <= RSS');
});

void t.test('parseStat reads pid, comm and ppid, whatever the comm holds', async (t) => {
  t.same(parseStat(NODE_STAT), { pid: 13432, comm: 'node', ppid: 2936 });
  t.same(parseStat(CONMON_STAT), { pid: 13471, comm: 'conmon', ppid: 13432 });
  t.same(parseStat(PROXYD_STAT), { pid: 14219, comm: 'systemd-socket-', ppid: 2936 });
  t.same(parseStat('77 (a) b (c)) S 5 77 77 0 -1 0'), { pid: 77, comm: 'a) b (c)', ppid: 5 });
  t.same(parseStat('78 ( ) R 0 0'), { pid: 78, comm: ' ', ppid: 0 });
  t.throws(() => parseStat('13432 node S 2936'), /Malformed \/proc\/PID\/stat/);
  t.throws(() => parseStat('x (node) S 2936'), /Malformed/);
  t.throws(() => parseStat('5 (node) S'), /Malformed/);
  const self = parseStat(readFileSync('/proc/self/stat', 'utf8'));
  t.equal(self.pid, process.pid);
  t.equal(self.ppid, process.ppid);
});

// pid -> ppid. 2936 is the user manager (a subreaper), 1 is init.
//   podsock today:    node 100 -> podman 101 -> (podman's helpers 102); conmon 110 (reparented to 2936) -> runc init/nginx 111 -> worker 112
//   podsock subreaper: node 200 -> conmon 210 -> nginx 211 -> worker 212
//   quadlet:          conmon 310 (MainPID, parent 2936) -> nginx 311 -> worker 312
//   proxyd:           proxyd 400; conmon 410 -> nginx 411
//   someone else's:   500 -> 501
const TREE = new Map<number, number>([
  [1, 0],
  [2936, 1],
  [100, 2936],
  [101, 100],
  [102, 101],
  [110, 2936],
  [111, 110],
  [112, 111],
  [200, 2936],
  [210, 200],
  [211, 210],
  [212, 211],
  [310, 2936],
  [311, 310],
  [312, 311],
  [400, 2936],
  [410, 2936],
  [411, 410],
  [500, 2936],
  [501, 500],
]);

void t.test('subtree: the root and everything below it', async (t) => {
  t.same([...subtree(TREE, 100)].sort((a, b) => a - b), [100, 101, 102]);
  t.same([...subtree(TREE, 112)], [112]);
  t.same([...subtree(TREE, 999)], [], 'an exited root has no subtree');
  t.equal(subtree(TREE, 2936).size, TREE.size - 1, 'everything but init');
  const loop = new Map([
    [7, 8],
    [8, 7],
  ]);
  t.same([...subtree(loop, 7)].sort((a, b) => a - b), [7, 8], 'a torn read with a cycle still ends');
});

void t.test('keptProcesses: the main trees and conmon, never the container', async (t) => {
  t.same(keptProcesses(TREE, [100], [110]), [100, 101, 102, 110], 'attached podman counted, conmon outside the tree counted');
  t.same(keptProcesses(TREE, [200], [210]), [200, 210], 'conmon below podsock counted, its container not');
  t.same(keptProcesses(TREE, [310], [310]), [310], 'conmon as MainPID: conmon only');
  t.same(keptProcesses(TREE, [400, 410], [410]), [400, 410], 'proxyd and the container service');
  t.same(keptProcesses(TREE, [100], []), [100, 101, 102]);
  t.same(keptProcesses(TREE, [100], [999]), [100, 101, 102], 'a conmon that exited adds nothing');
  t.same(keptProcesses(TREE, [999], [110]), [110], 'a main that exited adds nothing');
  t.same(keptProcesses(TREE, [], []), []);
});

const HYBRID_CGROUP = `9:name=systemd:/app.slice/psmem-proxy-13384-1-0.service
8:pids:/app.slice/psmem-proxy-13384-1-0.service
7:blkio:/
4:memory:/app.slice/psmem-proxy-13384-1-0.service
1:cpu:/app.slice
0::/app.slice/psmem-proxy-13384-1-0.service
`;

void t.test('unifiedCgroup takes the 0:: line, as systemd names ControlGroup=', async (t) => {
  t.equal(unifiedCgroup(HYBRID_CGROUP), '/app.slice/psmem-proxy-13384-1-0.service');
  t.equal(unifiedCgroup('0::/\n'), '/');
  t.equal(unifiedCgroup('9:name=systemd:/init.scope\n8:pids:/libpod_parent/conmon\n'), null, 'v1 only');
  t.equal(unifiedCgroup(''), null);
});

void t.test('cgroupMembers: the cgroups and their children, not a sibling sharing a prefix', async (t) => {
  const of = new Map([
    [10, '/app.slice/a.service'],
    [11, '/app.slice/a.service/payload'],
    [12, '/app.slice/a.service2'],
    [13, '/app.slice/b.service'],
    [14, '/libpod_parent/libpod-abc'],
  ]);
  t.same(cgroupMembers(of, ['/app.slice/a.service']), [10, 11]);
  t.same(cgroupMembers(of, ['/app.slice/b.service', '/app.slice/a.service2']), [12, 13]);
  t.same(cgroupMembers(of, []), []);
});
