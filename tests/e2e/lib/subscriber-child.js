'use strict';
// subscriber-child.js -- a practitioner's desktop client in its own process,
// so a test can kill it with SIGKILL: the kernel then closes its TCP
// connection with no HTTP/2 RST_STREAM or GOAWAY first, as when a laptop
// crashes or its network goes away.
//
//   node subscriber-child.js <host:port> <token>
//
// Subscribes (after_seq 0), starts the shift, and writes one JSON line per
// thing on stdout: {"type":"shift","status":{...}}, {"type":"event","event":{...}},
// {"type":"error","code":N,"details":"..."}.

const { GrpcClient } = require('./clients');

const [address, token] = process.argv.slice(2);
if (!address || !token) {
  process.stderr.write('usage: subscriber-child.js <host:port> <token>\n');
  process.exit(2);
}

const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const client = new GrpcClient(address, token, { name: 'child' });
const sub = client.subscribe('0');
sub.call.on('data', (ev) => out({ type: 'event', event: ev }));
sub.call.on('error', (e) => out({ type: 'error', code: e.code, details: e.details }));
client
  .call('StartShift', {})
  .then((r) => out({ type: 'shift', status: r.status }))
  .catch((e) => out({ type: 'error', code: e.code, details: e.details }));
