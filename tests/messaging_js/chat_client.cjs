// The main scenario of tests/emulator/messaging_js.rs for the official IVS Chat JS client (see common.cjs for
// the harness): ada (all capabilities) and bob (SEND_MESSAGE) connect to one room.
//
// Extra input: IVSCHAT_MAX_LENGTH, the room's maximumMessageLength.
// Protocol (stdout): {"step":"connected"} once both rooms are connected, after which the test calls SendEvent
// (app:HELLO); at the end {"step":"done", ...observations}.
'use strict';

const { SendMessageRequest, DeleteMessageRequest, DisconnectUserRequest } = require('amazon-ivs-chat-messaging');
const { expect, withTimeout, nextEvent, connectedRooms, say, run, tokenFetches } = require('./common.cjs');

async function main() {
  const [ada, bob] = await connectedRooms('ada', 'bob');
  expect(ada.state === 'connected' && bob.state === 'connected', 'both rooms are connected');

  // The test answers this line with SendEvent(app:HELLO); both rooms must see it as an application event.
  const hello = (room) => nextEvent(room, 'event', (event) => event.eventName === 'app:HELLO');
  const events = Promise.all([hello(ada), hello(bob)]);
  say({ step: 'connected' });
  const [[adaEvent], [bobEvent]] = await withTimeout(events, 'the app:HELLO event');
  expect(adaEvent.attributes.greeting === 'hi', `event attributes: ${JSON.stringify(adaEvent.attributes)}`);
  expect(adaEvent.id === bobEvent.id, 'both rooms got the same event');

  // sendMessage resolves on its echo; the other room receives the same message with the sender's attributes.
  const bobReceives = nextEvent(bob, 'message', (message) => message.content === 'hello');
  const sent = await withTimeout(ada.sendMessage(new SendMessageRequest('hello', { emoji: 'wave' })), 'the echo');
  const [received] = await withTimeout(bobReceives, 'the message at bob');
  expect(received.id === sent.id, 'same message id');
  expect(received.sender.userId === 'ada', `sender ${JSON.stringify(received.sender)}`);
  expect(received.sender.attributes.displayName === 'Ada', 'sender attributes from the token');
  expect(received.attributes.emoji === 'wave', 'message attributes');
  expect(received.sendTime instanceof Date && !Number.isNaN(received.sendTime.getTime()), 'sendTime is a date');

  // Over the room's maximumMessageLength: the promise rejects with the server's error.
  const tooLong = 'é'.repeat(Number(process.env.IVSCHAT_MAX_LENGTH) + 1);
  let rejection;
  try {
    await withTimeout(bob.sendMessage(new SendMessageRequest(tooLong)), 'the over-length refusal');
  } catch (error) {
    rejection = error;
  }
  expect(rejection && rejection.errorCode === 400, `over-length rejection: ${JSON.stringify(rejection)}`);

  // Bob has no DELETE_MESSAGE capability: 403.
  let forbidden;
  try {
    await withTimeout(bob.deleteMessage(new DeleteMessageRequest(sent.id)), 'the 403');
  } catch (error) {
    forbidden = error;
  }
  expect(forbidden && forbidden.errorCode === 403, `forbidden: ${JSON.stringify(forbidden)}`);

  // deleteMessage resolves on aws:DELETE_MESSAGE (which needs MessageID); bob sees messageDelete.
  const bobSeesDelete = nextEvent(bob, 'messageDelete');
  const deleted = await withTimeout(ada.deleteMessage(new DeleteMessageRequest(sent.id, 'spam')), 'deleteMessage');
  expect(deleted.messageId === sent.id && deleted.reason === 'spam', `delete event ${JSON.stringify(deleted)}`);
  const [bobDelete] = await withTimeout(bobSeesDelete, 'messageDelete at bob');
  expect(bobDelete.messageId === sent.id, 'bob sees the deleted message id');

  // disconnectUser resolves for ada; bob sees userDisconnect, then a clean server close without reconnecting.
  const bobKicked = nextEvent(bob, 'userDisconnect');
  const bobDisconnected = nextEvent(bob, 'disconnect');
  const kicked = await withTimeout(ada.disconnectUser(new DisconnectUserRequest('bob', 'Spam')), 'disconnectUser');
  expect(kicked.userId === 'bob', `disconnect event ${JSON.stringify(kicked)}`);
  const [bobEventSeen] = await withTimeout(bobKicked, 'userDisconnect at bob');
  const [bobReason] = await withTimeout(bobDisconnected, 'bob to be disconnected');
  expect(bobEventSeen.userId === 'bob' && bobEventSeen.reason === 'Spam', 'userDisconnect payload');
  // Give a reconnect (which a close without a close frame would cause) the time to show up.
  await new Promise((resolve) => setTimeout(resolve, 500));

  const adaDisconnected = nextEvent(ada, 'disconnect');
  ada.disconnect();
  const [adaReason] = await withTimeout(adaDisconnected, 'ada to disconnect');

  say({
    step: 'done',
    bobDisconnectReason: bobReason,
    bobState: bob.state,
    adaDisconnectReason: adaReason,
    tokenFetches,
    messageId: sent.id,
  });
  process.exit(0);
}

run(main);
