// Following an intent live: GraphQL over the graphql-transport-ws protocol, written by
// hand (connection_init, subscribe, next/complete/error, ping/pong; no library).
// Each transport is a function with the same signature: the WebSocket first and, when
// it has dropped twice in a row with no news (a proxy or network that refuses
// WebSockets), GraphQL over SSE (contract section 9) over a plain fetch, which can
// send the Authorization header that EventSource cannot.
"use strict";

window.CobroLive = (function () {
  var MAX_BACKOFF_MS = 10000;

  // Opens one stream; calls handlers.next(data) per message, handlers.done() when the
  // server completes it, handlers.lost(reason) when it drops. Returns a closer.
  function webSocketTransport(request, handlers) {
    var scheme = location.protocol === "https:" ? "wss:" : "ws:";
    var socket = new WebSocket(scheme + "//" + location.host + "/graphql", "graphql-transport-ws");
    var finished = false;
    socket.onopen = function () {
      socket.send(JSON.stringify({
        type: "connection_init",
        payload: { Authorization: "Bearer " + request.secret },
      }));
    };
    socket.onmessage = function (event) {
      var message = JSON.parse(event.data);
      if (message.type === "connection_ack") {
        socket.send(JSON.stringify({
          id: "1", type: "subscribe",
          payload: { query: request.query, variables: request.variables() },
        }));
      } else if (message.type === "ping") {
        socket.send(JSON.stringify({ type: "pong" }));
      } else if (message.type === "next") {
        handlers.next(message.payload);
      } else if (message.type === "complete") {
        finished = true;
        socket.close(1000);
        handlers.done();
      } else if (message.type === "error") {
        handlers.lost(message.payload);
        socket.close(1000);
      }
    };
    socket.onclose = function (event) {
      if (!finished) handlers.lost({ code: event.code });
    };
    return function close() { finished = true; socket.close(1000); };
  }

  // GraphQL over SSE, "distinct connections" mode: one POST per subscription, its
  // answer a text/event-stream of `next` events (data: the execution result) ended by
  // `complete`.
  function sseTransport(request, handlers) {
    var controller = new AbortController();
    var finished = false;
    function lost(reason) { if (!finished) { finished = true; handlers.lost(reason); } }
    fetch("/graphql", {
      method: "POST",
      signal: controller.signal,
      headers: {
        "Accept": "text/event-stream",
        "Content-Type": "application/json",
        "Authorization": "Bearer " + request.secret,
      },
      body: JSON.stringify({ query: request.query, variables: request.variables() }),
    }).then(function (response) {
      if (!response.ok || !response.body) { lost({ status: response.status }); return; }
      var reader = response.body.getReader();
      var decoder = new TextDecoder();
      var buffer = "";
      function pump() {
        return reader.read().then(function (chunk) {
          if (chunk.done) { lost({ code: "ended" }); return; }
          // Lines end in CRLF (a CR left at a chunk's end meets its LF in the next).
          buffer = (buffer + decoder.decode(chunk.value, { stream: true })).replace(/\r\n/g, "\n");
          var end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            var block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            var event = "message";
            var data = [];
            block.split("\n").forEach(function (line) {
              if (line.indexOf("event:") === 0) event = line.slice(6).trim();
              else if (line.indexOf("data:") === 0) data.push(line.slice(5).replace(/^ /, ""));
            });
            if (event === "next" && data.length) {
              handlers.next(JSON.parse(data.join("\n")));
            } else if (event === "complete") {
              finished = true;
              controller.abort();
              handlers.done();
              return;
            }
          }
          return pump();
        });
      }
      return pump();
    }).catch(function (error) { lost({ error: String(error) }); });
    return function close() { finished = true; controller.abort(); };
  }

  var TRANSPORTS = [webSocketTransport, sseTransport];

  // Follows a subscription until the server completes it, reconnecting with backoff;
  // `request.variables()` is asked again on each connection, so a reconnection passes
  // the last version seen (afterVersion) and misses nothing.
  function follow(request, handlers) {
    var attempt = 0;
    var closed = false;
    var close = null;
    function connect() {
      if (closed) return;
      // The WebSocket, and SSE once it has dropped twice in a row with no news.
      var transport = TRANSPORTS[Math.min(Math.floor(attempt / 2), TRANSPORTS.length - 1)];
      var lostOnce = false;
      close = transport(request, {
        next: function (payload) {
          attempt = 0;
          handlers.next(payload);
        },
        done: function () { closed = true; handlers.done(); },
        lost: function (reason) {
          if (closed || lostOnce) return;
          lostOnce = true;
          attempt += 1;
          handlers.reconnecting(reason);
          var delay = Math.min(MAX_BACKOFF_MS, 250 * Math.pow(2, attempt)) * (0.5 + Math.random() / 2);
          setTimeout(connect, delay);
        },
      });
    }
    connect();
    return function stop() { closed = true; if (close) close(); };
  }

  return { follow: follow, transports: TRANSPORTS };
})();
