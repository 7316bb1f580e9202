// dome's gate on wrangler's network (loaded with NODE_OPTIONS=--require, see gate.py).
// DOME_NET_GATE_FD names a socket dome holds the other end of. The process's first network
// connection waits (the event loop blocks: nothing is sent) until dome writes "go"; end of file
// instead (dome could not take the deploy's lock) ends the process before it sends anything.
// wrangler's launcher (bin/wrangler.js) runs the real CLI as a node child, which inherits no
// descriptor but its stdio: the gate is handed to that child as one more stdio entry.
// Each API answer is reported on the socket ("answer METHOD PATH STATUS"), so that dome can
// read what serves as soon as the deployment call is answered, beside wrangler's last calls.
"use strict";
const fd = Number(process.env.DOME_NET_GATE_FD);
delete process.env.DOME_NET_GATE_FD; // only a child it is handed to gets it
if (Number.isInteger(fd) && fd > 2) {
	const fs = require("node:fs");
	const net = require("node:net");
	const childProcess = require("node:child_process");
	const channels = require("node:diagnostics_channel");
	let state = "closed"; // closed -> open, or handed (to the CLI child)
	const wait = () => {
		const buffer = Buffer.alloc(64);
		let read = 0;
		for (;;) {
			try {
				read = fs.readSync(fd, buffer, 0, buffer.length, null);
				break;
			} catch (error) {
				if (error.code === "EAGAIN" || error.code === "EINTR") continue;
				read = 0;
				break;
			}
		}
		if (read > 0 && buffer.toString("utf8", 0, read).startsWith("go")) {
			state = "open";
			return;
		}
		process.reallyExit(75); // refused: leave at once, no exit handler may reach the network
	};
	const connect = net.Socket.prototype.connect;
	net.Socket.prototype.connect = function (...args) {
		if (state === "closed") wait();
		return connect.apply(this, args);
	};
	const spawn = childProcess.spawn;
	childProcess.spawn = function (command, args, options) {
		if (state === "closed" && command === process.execPath && options && Array.isArray(options.stdio)) {
			state = "handed";
			const stdio = [...options.stdio, fd];
			const env = { ...(options.env || process.env), DOME_NET_GATE_FD: String(stdio.length - 1) };
			options = { ...options, stdio, env };
		}
		return spawn.call(this, command, args, options);
	};
	channels.subscribe("undici:request:headers", ({ request, response }) => {
		try {
			fs.writeSync(fd, `answer ${request.method} ${request.path} ${response.statusCode}\n`);
		} catch {
			// dome stopped listening: nothing to report to
		}
	});
}
