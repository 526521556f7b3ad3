// Deterministic Socket.IO-like chat events of about SIZE bytes, shared by the compression
// benchmarks: an event name and an object with a user, a room, a timestamp and text drawn from
// a fixed vocabulary (about as compressible as chat text).
'use strict';

const WORDS = ('the quick brown fox jumps over lazy dog socket engine server client message ' +
  'room user hello world latency packet binary upgrade polling websocket stream frame deflate ' +
  'compress proxy cookie session heartbeat ping pong namespace event broadcast acknowledge')
  .split(' ');

function message(size, seed) {
  let x = (seed * 2654435761) >>> 0 || 1;
  const next = () => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x; };
  let text = WORDS[next() % WORDS.length];
  while (text.length < size) text += ' ' + WORDS[next() % WORDS.length];
  const body = JSON.stringify(['chat', { user: `user-${next() % 10000}`, room: 'general', ts: 1700000000000 + seed, text }]);
  return '42' + body.slice(0, Math.max(size, 16) - 2) + (body.length > size - 2 ? '"}]' : '');
}

module.exports = { message };
