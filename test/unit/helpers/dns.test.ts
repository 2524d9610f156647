import t from 'tap';
import { dnsQuery, parseDnsAnswer } from '../../helpers/dns.js';

void t.test('the test DNS client encodes a query and reads an answer (RFC 1035 4.1)', async (t) => {
  const q = dnsQuery(0x1234, 'a.b');
  t.equal(q.toString('hex'), '123401000001000000000000' + '0161' + '0162' + '00' + '00010001');
  // The answer to it: QR|RD|RA, one answer, a pointer to the question's name (0xc00c), A IN, TTL 0, 10.1.2.3.
  const answer = Buffer.concat([Buffer.from('123481800001000100000000', 'hex'), q.subarray(12), Buffer.from('c00c000100010000000000040a010203', 'hex')]);
  t.same(parseDnsAnswer(answer), { id: 0x1234, response: true, rcode: 0, name: 'a.b', address: '10.1.2.3' });
  t.throws(() => parseDnsAnswer(Buffer.alloc(5)), /DNS message of 5 bytes/);
});
