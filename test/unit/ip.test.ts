import { isIP as netIsIP } from 'node:net';
import t from 'tap';
import { isIP } from '../../src/ip.js';

const CASES = [
  '127.0.0.1', '0.0.0.0', '255.255.255.255', '256.0.0.1', '1.2.3', '1.2.3.4.5', '01.2.3.4', '1.2.3.04', ' 1.2.3.4', '1.2.3.4 ',
  '::', '::1', '[::1]', '::ffff:127.0.0.1', 'fe80::1%eth0', 'fe80::1%', '2001:db8::8a2e:370:7334', '2001:db8:0:0:0:0:2:1',
  '2001:db8::2::1', '1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8:9', ':1', '1:', 'g::1', '12345::1', '::1.2.3.4', '1::2:3.4.5.6',
  'localhost', '', 'example.com', '1.2.3.4/24', 'FFFF::', '::FFFF:1.2.3.256',
];

void t.test('isIP answers as net.isIP does', async (t) => {
  for (const c of CASES) t.equal(isIP(c), netIsIP(c), JSON.stringify(c));
});

void t.test('random strings from an address alphabet agree with net.isIP', async (t) => {
  let seed = 12345;
  const rand = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const alphabet = '0123456789abcdefABCDEF:.%';
  let mismatches = 0;
  for (let i = 0; i < 20000; i++) {
    let s = '';
    const len = 1 + rand(20);
    for (let j = 0; j < len; j++) s += alphabet[rand(alphabet.length)];
    if (isIP(s) !== netIsIP(s)) {
      mismatches++;
      t.fail(`differs for ${JSON.stringify(s)}`);
    }
  }
  t.equal(mismatches, 0);
});
