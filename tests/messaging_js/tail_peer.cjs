// The chatting peer of tests/emulator/tail.rs (see common.cjs for the harness): ada connects with the official
// client and sends one message while `kubectl ivschat tail` watches the room; then she waits until the test
// disconnects her (DisconnectUser), which must end in a clean server close.
//
// Protocol (stdout): {"step":"connected"}, {"step":"sent","id":...} once the message is echoed, and
// {"step":"done","reason":...} after the disconnect. The test bounds the waits: the disconnect comes only after
// the test's other steps, which may take longer than one step timeout of common.cjs.
'use strict';

const { SendMessageRequest } = require('amazon-ivs-chat-messaging');
const { withTimeout, nextEvent, makeRoom, say, run } = require('./common.cjs');

async function main() {
  const ada = makeRoom('ada');
  const connected = nextEvent(ada, 'connect');
  ada.connect();
  await withTimeout(connected, 'the connection');
  say({ step: 'connected' });

  const disconnected = nextEvent(ada, 'disconnect');
  const sent = await withTimeout(ada.sendMessage(new SendMessageRequest('hello from js', { emoji: 'wave' })), 'the echo');
  say({ step: 'sent', id: sent.id });

  const [reason] = await disconnected;
  say({ step: 'done', reason });
  process.exit(0);
}

run(main);
