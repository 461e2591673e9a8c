// Following an intent live: GraphQL over the graphql-transport-ws protocol, written by
// hand (connection_init, subscribe, next/complete/error, ping/pong; no library).
// Each transport is a function with the same signature, tried in order: an SSE one
// (contract section 9) slots into TRANSPORTS without touching the pages.
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

  var TRANSPORTS = [webSocketTransport];

  // Follows a subscription until the server completes it, reconnecting with backoff;
  // `request.variables()` is asked again on each connection, so a reconnection passes
  // the last version seen (afterVersion) and misses nothing.
  function follow(request, handlers) {
    var attempt = 0;
    var closed = false;
    var close = null;
    function connect() {
      if (closed) return;
      var transport = TRANSPORTS[Math.min(attempt, TRANSPORTS.length - 1)];
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
