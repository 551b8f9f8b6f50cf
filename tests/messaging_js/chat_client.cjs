// Drives the official IVS Chat JS client (amazon-ivs-chat-messaging) against the emulator's messaging endpoint,
// for tests/emulator_messaging_js.rs. Run with NODE_PATH pointing at the node_modules that hack/ivschat-js.sh
// installed.
//
// Input (environment):
//   IVSCHAT_URL     ws://127.0.0.1:PORT
//   IVSCHAT_TOKENS  {"ada": [token, ...], "bob": [token, ...]}: each connection attempt takes the next token.
//   IVSCHAT_MAX_LENGTH  the room's maximumMessageLength.
// Protocol (stdout, one JSON object a line): {"step":"connected"} once both rooms are connected, after which the
// test calls SendEvent (app:HELLO); at the end {"step":"done", ...observations}. Stdin is not used. Any failed
// expectation exits with status 1 and a message on stderr; the SDK's warnings and errors also go to stderr.
'use strict';

globalThis.WebSocket = require('ws'); // Node 20 has no global WebSocket; the SDK uses the global one.
const {
  ChatRoom,
  SendMessageRequest,
  DeleteMessageRequest,
  DisconnectUserRequest,
} = require('amazon-ivs-chat-messaging');

const STEP_TIMEOUT_MS = 5000;

function fail(message) {
  process.stderr.write(`chat_client: ${message}\n`);
  process.exit(1);
}

function expect(condition, message) {
  if (!condition) fail(message);
}

function withTimeout(promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), STEP_TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Resolves with the first `eventName` payload of `room` that satisfies `accept`. */
function nextEvent(room, eventName, accept = () => true) {
  return new Promise((resolve) => {
    const remove = room.addListener(eventName, (...payload) => {
      if (accept(...payload)) {
        remove();
        resolve(payload);
      }
    });
  });
}

// One line per SDK warning or error, objects as JSON, so the test can tell expected errors from others.
const show = (arg) => (typeof arg === 'object' && arg !== null ? JSON.stringify(arg) : String(arg));
const stderrLogger = {
  debug() {},
  info() {},
  warn: (...args) => process.stderr.write(`sdk warn: ${args.map(show).join(' ')}\n`),
  error: (...args) => process.stderr.write(`sdk error: ${args.map(show).join(' ')}\n`),
};

const tokens = JSON.parse(process.env.IVSCHAT_TOKENS);
const tokenFetches = { ada: 0, bob: 0 };

function makeRoom(user) {
  const room = new ChatRoom({
    regionOrUrl: process.env.IVSCHAT_URL,
    tokenProvider: async () => {
      tokenFetches[user] += 1;
      const token = tokens[user].shift();
      if (!token) throw new Error(`no chat token left for ${user}`);
      return { token };
    },
  });
  room.logger = stderrLogger;
  room.logLevel = 'warn';
  return room;
}

function say(object) {
  process.stdout.write(`${JSON.stringify(object)}\n`);
}

async function main() {
  const ada = makeRoom('ada');
  const bob = makeRoom('bob');
  const connected = Promise.all([nextEvent(ada, 'connect'), nextEvent(bob, 'connect')]);
  ada.connect();
  bob.connect();
  await withTimeout(connected, 'both rooms to connect');
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

main().catch((error) => fail(error && error.stack ? error.stack : String(error)));
