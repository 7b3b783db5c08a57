// Reference WebSocket echo server on uWebSockets.js (issue 17): echoes every message with its type on
// /echo, compression off, no idle timeout, no per-message logging. Binds 127.0.0.1, prints its
// readiness line as JSON (the same shape as netlab's). A bench contender only, never a dependency:
// bench/setup.sh installs the npm package `uwebsockets` (3.0.6, which ships uws_linux_x64_115.node for
// Node 20) into build-release/bench/uws/, and bench.py runs this with NODE_PATH pointing there.
//   NODE_PATH=build-release/bench/uws/node_modules node uws-echo.js [PORT]
'use strict';
const uWS = require('uwebsockets');

const port = parseInt(process.argv[2] || '0', 10);
uWS.App()
  .ws('/echo', {
    compression: uWS.DISABLED,
    maxPayloadLength: 64 * 1024 * 1024,
    idleTimeout: 0,
    maxBackpressure: 64 * 1024 * 1024,
    message: (ws, message, isBinary) => { ws.send(message, isBinary); },
  })
  .listen('127.0.0.1', port, (token) => {
    if (!token) {
      process.stderr.write(`uws-echo: cannot listen on 127.0.0.1:${port}\n`);
      process.exit(3);
    }
    process.stdout.write(JSON.stringify({ event: 'listening', proto: 'ws', address: '127.0.0.1',
                                          port: uWS.us_socket_local_port(token) }) + '\n');
  });
