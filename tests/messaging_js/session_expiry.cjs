// Session expiry scenario of tests/emulator/messaging_js.rs (see common.cjs for the harness): ada's first token
// has a session that ends about a second after connecting. The emulator then sends ERROR 401 and closes; the
// official client must take that as "connection expired", reconnect with the next token, and keep working,
// without ever reporting a disconnect.
//
// Protocol (stdout): at the end {"step":"done", ...observations}.
'use strict';

const { SendMessageRequest } = require('amazon-ivs-chat-messaging');
const { expect, withTimeout, nextEvent, makeRoom, say, run, tokenFetches } = require('./common.cjs');

async function main() {
  const ada = makeRoom('ada');
  const disconnects = [];
  ada.addListener('disconnect', (reason) => disconnects.push(reason));
  let connects = 0;
  ada.addListener('connect', () => {
    connects += 1;
  });

  const firstConnect = nextEvent(ada, 'connect');
  ada.connect();
  await withTimeout(firstConnect, 'the first connection');
  const reconnected = nextEvent(ada, 'connect');
  await withTimeout(reconnected, 'the reconnection after the session ended');
  expect(ada.state === 'connected', `state after the session ended: ${ada.state}`);
  expect(disconnects.length === 0, `disconnects: ${JSON.stringify(disconnects)}`);

  // The new connection works.
  const echoed = await withTimeout(ada.sendMessage(new SendMessageRequest('after renewal')), 'the echo');
  expect(echoed.content === 'after renewal', `echo ${JSON.stringify(echoed)}`);

  const finished = nextEvent(ada, 'disconnect');
  ada.disconnect();
  const [reason] = await withTimeout(finished, 'ada to disconnect');
  say({ step: 'done', connects, tokenFetches, disconnectReason: reason });
  process.exit(0);
}

run(main);
