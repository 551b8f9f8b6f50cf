// The review scenario of tests/emulator/review.rs for the official IVS Chat JS client (see common.cjs for the
// harness): ada sends and bob watches in a room whose message review handler (a real Lambda function under the
// RIE) allows "hello" unchanged, rewrites "rewrite me", denies "deny me" and raises on "raise it".
//
// Extra input: IVSCHAT_FALLBACK, the room's fallbackResult (ALLOW or DENY).
// Output: {"step":"done", rewritten, denied: {errorCode, errorMessage}, failed: {content} | {errorCode, errorMessage}}.
'use strict';

const { SendMessageRequest } = require('amazon-ivs-chat-messaging');
const { expect, withTimeout, nextEvent, connectedRooms, say, run } = require('./common.cjs');

/** sendMessage's outcome: the delivered message, or the rejection's code and message. */
async function outcomeOf(room, content, what) {
  try {
    const message = await withTimeout(room.sendMessage(new SendMessageRequest(content)), what);
    return { content: message.content, attributes: message.attributes };
  } catch (error) {
    expect(typeof error.errorCode === 'number', `${what}: ${error && error.stack ? error.stack : error}`);
    return { errorCode: error.errorCode, errorMessage: error.errorMessage };
  }
}

async function main() {
  const fallback = process.env.IVSCHAT_FALLBACK;
  const [ada, bob] = await connectedRooms('ada', 'bob');
  const atBob = [];
  bob.addListener('message', (message) => atBob.push(message.content));

  // Allowed unchanged: the echo resolves sendMessage, bob gets the same message.
  const bobHello = nextEvent(bob, 'message', (message) => message.content === 'hello');
  const hello = await withTimeout(ada.sendMessage(new SendMessageRequest('hello', { emoji: 'wave' })), 'hello');
  expect(hello.content === 'hello' && hello.attributes.emoji === 'wave', `hello: ${JSON.stringify(hello)}`);
  const [bobSawHello] = await withTimeout(bobHello, 'hello at bob');
  expect(bobSawHello.id === hello.id, 'the same message at bob');

  // Rewritten: sendMessage resolves with the handler's content and attributes, which bob gets too.
  const bobRewrite = nextEvent(bob, 'message', (message) => message.content === 'REWRITE ME [reviewed]');
  const rewritten = await outcomeOf(ada, 'rewrite me', 'the rewrite');
  expect(rewritten.attributes && rewritten.attributes.reviewed === 'yes', `rewrite: ${JSON.stringify(rewritten)}`);
  await withTimeout(bobRewrite, 'the rewrite at bob');

  // Denied by the handler: sendMessage rejects with 406 and the handler's reason.
  const denied = await outcomeOf(ada, 'deny me', 'the denial');

  // The handler raises: the fallbackResult decides.
  const bobFailed = fallback === 'ALLOW' ? nextEvent(bob, 'message', (m) => m.content === 'raise it') : null;
  const failed = await outcomeOf(ada, 'raise it', 'the fallback');
  if (bobFailed) await withTimeout(bobFailed, 'the fallback-allowed message at bob');

  // Nothing refused reached bob.
  await new Promise((resolve) => setTimeout(resolve, 300));
  expect(!atBob.includes('deny me'), `bob got the denied message: ${JSON.stringify(atBob)}`);
  if (fallback !== 'ALLOW') expect(!atBob.includes('raise it'), `bob got a refused message: ${JSON.stringify(atBob)}`);

  const disconnected = Promise.all([nextEvent(ada, 'disconnect'), nextEvent(bob, 'disconnect')]);
  ada.disconnect();
  bob.disconnect();
  await withTimeout(disconnected, 'both rooms to disconnect');
  say({ step: 'done', rewritten: rewritten.content, denied, failed });
  process.exit(0);
}

run(main);
