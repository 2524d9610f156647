// native-pipe.test.ts on the poll engine (the fallback where io_uring is missing or forbidden).
process.env.PODSOCK_TEST_RELAY_ENGINE = 'poll';
await import('./native-pipe.test.js');
