// Reference WebSocket echo server on Node's `ws` (Debian's node-ws): echoes every message with its
// type on /echo, no per-message logging. Binds 127.0.0.1, prints its readiness line as JSON.
//   NODE_PATH=/usr/share/nodejs node node-ws-echo.js [PORT]
'use strict';
const WebSocket = require('ws');

const port = parseInt(process.argv[2] || '0', 10);
const wss = new WebSocket.Server({ host: '127.0.0.1', port, path: '/echo', perMessageDeflate: false });
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('error', () => {});
});
wss.on('listening', () => {
  process.stdout.write(JSON.stringify({ event: 'listening', proto: 'ws', address: '127.0.0.1',
                                        port: wss.address().port }) + '\n');
});
wss.on('error', (e) => { process.stderr.write(`node-ws-echo: ${e.message}\n`); process.exit(3); });
