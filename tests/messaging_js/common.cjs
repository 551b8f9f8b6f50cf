// Shared harness of the JS client scenarios (chat_client.cjs, session_expiry.cjs) that
// tests/emulator/messaging_js.rs runs under Node with NODE_PATH pointing at the node_modules that
// hack/ivschat-js.sh installed.
//
// Input (environment): IVSCHAT_URL (ws://127.0.0.1:PORT) and IVSCHAT_TOKENS ({"user": [token, ...]}: each
// connection attempt of a user takes the next token). Output: one JSON object a line on stdout (`say`); a failed
// expectation exits with status 1 and a message on stderr, where the SDK's warnings and errors also go.
'use strict';

globalThis.WebSocket = require('ws'); // Node 20 has no global WebSocket; the SDK uses the global one.
const { ChatRoom } = require('amazon-ivs-chat-messaging');

const STEP_TIMEOUT_MS = 5000;

function fail(message) {
  process.stderr.write(`js client: ${message}\n`);
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
/** How many tokens each user's room asked for (1 = never reconnected). */
const tokenFetches = Object.fromEntries(Object.keys(tokens).map((user) => [user, 0]));

/** A ChatRoom for `user` on the emulator, logging warnings and errors to stderr. */
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

/** Rooms for `users`, connected (resolves once every one of them is). */
async function connectedRooms(...users) {
  const rooms = users.map(makeRoom);
  const connected = Promise.all(rooms.map((room) => nextEvent(room, 'connect')));
  rooms.forEach((room) => room.connect());
  await withTimeout(connected, `${users.join(' and ')} to connect`);
  return rooms;
}

function say(object) {
  process.stdout.write(`${JSON.stringify(object)}\n`);
}

/** Runs a scenario, turning any exception into a failure. */
function run(main) {
  main().catch((error) => fail(error && error.stack ? error.stack : String(error)));
}

module.exports = { expect, withTimeout, nextEvent, makeRoom, connectedRooms, say, run, tokenFetches };
