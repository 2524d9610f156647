import t from 'tap';
import { podmanSystemdUnit } from '../../../src/runtime/systemd-unit.js';

const USER_SERVICE = '0::/user.slice/user-1000.slice/user@1000.service/app.slice/web.service\n';

void t.test("PODMAN_SYSTEMD_UNIT: the unit's own variable, else the unit podsock runs in", async (t) => {
  const none = (): string => {
    throw new Error('not read');
  };
  t.equal(podmanSystemdUnit({ PODMAN_SYSTEMD_UNIT: 'podsock@web.service' }, false, none), 'podsock@web.service', 'as the unit sets it');
  t.equal(podmanSystemdUnit({}, false, () => USER_SERVICE), 'web.service', 'from the cgroup when the unit does not set it');
  t.equal(podmanSystemdUnit({ PODMAN_SYSTEMD_UNIT: '' }, false, () => '0::/system.slice/podsock@a.service\n'), 'podsock@a.service', 'an empty value is unset');
  t.equal(podmanSystemdUnit({}, true, () => USER_SERVICE), null, 'standalone: the terminal’s unit is not the service’s');
  t.equal(podmanSystemdUnit({}, false, () => '0::/user.slice/user-1000.slice/session-3.scope\n'), null, 'a scope is not a unit podman can restart');
  t.equal(podmanSystemdUnit({}, false, none), null, 'an unreadable cgroup file');
});
