// A SpecifierContext with fixed values, for tests that expand %-specifiers without asking the machine.
import type { SpecifierContext } from '../../src/config/specifiers.js';

/** Fixed values: unit 'podsock@web.service' of a user manager, uid 1000 'alice'; `over` replaces any. */
export function fixedSpecifiers(over: Partial<SpecifierContext> = {}): SpecifierContext {
  return {
    unit: 'podsock@web.service',
    userManager: true,
    uid: 1000,
    gid: 1001,
    userName: 'alice',
    groupName: 'staff',
    home: '/home/alice',
    shell: '/bin/zsh',
    env: { XDG_RUNTIME_DIR: '/run/user/1000' },
    hostname: 'box.example.org',
    prettyHostname: "Alice's box",
    machineId: '0123456789abcdef0123456789abcdef',
    bootId: 'fedcba9876543210fedcba9876543210',
    kernelRelease: '6.1.0-13-amd64',
    architecture: 'x86-64',
    osRelease: { ID: 'debian', VERSION_ID: '12' },
    ...over,
  };
}
