/*
 * Test-only stand-ins for the browser features of 2010 that three transports of the Socket.IO 0.6
 * client depend on, so that headless Chromium can run the client's own transport code unchanged:
 *
 *   ?shim=htmlfile       Internet Explorer's ActiveXObject("htmlfile"), CollectGarbage and
 *                        window.attachEvent (the client's htmlfile transport)
 *   ?shim=xhr-multipart  Gecko 1.x's multipart XMLHttpRequest (the client's xhr-multipart transport)
 *   ?shim=flashsocket    web-socket-js's WebSocket.__addTask and a Flash Player >= 10 as SWFObject
 *                        sees it (the client's flashsocket transport, over the browser's own WebSocket)
 *
 * page.html loads this file before socket.io.js. Without a `shim` query parameter it does nothing.
 * Several names may be given, separated by commas. window.SHIMS lists what was installed.
 * Diagnostics go to the console, which the tests record.
 */
(function () {
  "use strict";

  var requested = (new URLSearchParams(window.location.search).get("shim") || "")
    .split(",")
    .filter(function (name) { return name.length > 0; });
  window.SHIMS = [];

  // -- htmlfile ---------------------------------------------------------------------------------

  // IE's "htmlfile" object is an HTML document that lives outside the page and exposes its window
  // as `parentWindow`. The closest thing here is the document of an about:blank iframe that nobody
  // sees: the client writes into it and adds its never-ending iframe to it, and Chromium runs each
  // streamed <script> as it arrives, inside that inner iframe (whose `parent` is this one).
  function installHtmlfile() {
    window.ActiveXObject = function (progId) {
      if (String(progId).toLowerCase() !== "htmlfile") {
        throw new Error("shims.js: only ActiveXObject('htmlfile') is emulated, not " + progId);
      }
      var holder = document.createElement("iframe");
      holder.setAttribute("data-shim", "htmlfile");
      holder.style.display = "none";
      (document.body || document.documentElement).appendChild(holder);
      var doc = holder.contentDocument;
      Object.defineProperty(doc, "parentWindow", {
        configurable: true,
        get: function () { return this.defaultView; }
      });
      return doc;
    };
    // IE's hint to run its garbage collector; nothing to do here.
    window.CollectGarbage = function () {};
    // IE's event API, used by the client for "onunload" (and, once it exists, by io.util.load for
    // "onload"). Chromium discourages unload listeners, and pagehide fires at the same moment.
    window.attachEvent = function (type, listener) {
      var name = String(type).replace(/^on/, "");
      window.addEventListener(name === "unload" ? "pagehide" : name, listener, false);
      return true;
    };
  }

  // -- xhr-multipart ----------------------------------------------------------------------------

  // Gecko 1.x: an XHR with `multipart = true` whose response is multipart/x-mixed-replace fired
  // readystatechange (3, then 4) once per part, with responseText holding that part's body only.
  // Here such a request is made with a streaming fetch(); the body is cut at the boundary that the
  // response's Content-Type names, and every part is handed to the XHR's handler the Gecko way.
  function installMultipart() {
    var proto = XMLHttpRequest.prototype;
    var nativeOpen = proto.open;
    var nativeSend = proto.send;
    var nativeAbort = proto.abort;

    proto.multipart = false; // XHRMultipart.check() only asks whether the property exists

    proto.open = function (method, url) {
      this.shimTarget = {method: String(method || "GET").toUpperCase(), url: String(url)};
      return nativeOpen.apply(this, arguments);
    };
    proto.send = function () {
      if (!this.multipart) return nativeSend.apply(this, arguments);
      streamParts(this);
    };
    proto.abort = function () {
      if (this.shimController) {
        this.shimController.abort();
        this.shimController = null;
        return;
      }
      return nativeAbort.apply(this, arguments);
    };
  }

  function report(xhr, readyState, text) {
    var values = {readyState: readyState, responseText: text, status: 200, statusText: "OK"};
    Object.keys(values).forEach(function (key) {
      Object.defineProperty(xhr, key, {value: values[key], configurable: true, writable: true});
    });
    if (typeof xhr.onreadystatechange === "function") xhr.onreadystatechange();
  }

  function streamParts(xhr) {
    var controller = new AbortController();
    var target = xhr.shimTarget;
    xhr.shimController = controller;

    fetch(target.url, {method: target.method, cache: "no-store", signal: controller.signal})
      .then(function (response) {
        var contentType = response.headers.get("Content-Type") || "";
        var found = /^multipart\/x-mixed-replace\s*;.*\bboundary="?([^";]+)"?/i.exec(contentType);
        if (response.status !== 200 || !found) {
          throw new Error("expected a 200 multipart/x-mixed-replace stream, got " + response.status +
                          " with Content-Type " + JSON.stringify(contentType));
        }
        var delimiter = "--" + found[1];
        console.info("xhr-multipart shim: stream open, boundary " + found[1]);
        var reader = response.body.getReader();
        var decoder = new TextDecoder("utf-8");
        var buffered = "";
        var started = false;
        var parts = 0;

        // Body: "--B\n", then for every part "<headers>\n\n<body>\n--B\n" (LF line ends).
        function cutParts() {
          if (!started) {
            if (buffered.length < delimiter.length + 1) return;
            if (buffered.slice(0, delimiter.length + 1) !== delimiter + "\n") {
              throw new Error("stream does not start with " + JSON.stringify(delimiter + "\n") + ": " +
                              JSON.stringify(buffered.slice(0, 80)));
            }
            buffered = buffered.slice(delimiter.length + 1);
            started = true;
          }
          for (;;) {
            var end = buffered.indexOf("\n" + delimiter);
            var next = end + 1 + delimiter.length;
            if (end < 0 || buffered.length <= next) return;
            var part = buffered.slice(0, end);
            var closing = buffered.charAt(next) === "-";
            buffered = buffered.slice(next + 1);
            var headerEnd = part.indexOf("\n\n");
            if (headerEnd < 0) throw new Error("part without a blank line after its headers: " + JSON.stringify(part));
            parts += 1;
            if (controller.signal.aborted) return;
            var body = part.slice(headerEnd + 2);
            report(xhr, 3, body);
            report(xhr, 4, body);
            if (closing) return;
          }
        }

        function pump() {
          return reader.read().then(function (chunk) {
            if (chunk.done) {
              buffered += decoder.decode();
              cutParts();
              console.info("xhr-multipart shim: stream ended after " + parts + " part(s)");
              return undefined;
            }
            buffered += decoder.decode(chunk.value, {stream: true});
            cutParts();
            return pump();
          });
        }
        return pump();
      })
      .catch(function (problem) {
        if (problem && problem.name === "AbortError") return;
        console.error("xhr-multipart shim: " + (problem && problem.message ? problem.message : problem));
      });
  }

  // -- flashsocket ------------------------------------------------------------------------------

  // web-socket-js (the Flash WebSocket) queued every call until its movie had loaded and exposed
  // WebSocket.__addTask for that; the browser's own WebSocket is usable at once. The client also
  // asks SWFObject, which socket.io.js assigns to the global `swfobject`, for Flash Player 10 or
  // later: the object is given a fixed Flash version as soon as it is assigned.
  var FLASH_VERSION = [10, 3, 181];

  function hasFlashPlayerVersion(wanted) {
    var parts = String(wanted).split(".");
    for (var i = 0; i < 3; i++) {
      var need = parseInt(parts[i], 10) || 0;
      if (FLASH_VERSION[i] !== need) return FLASH_VERSION[i] > need;
    }
    return true;
  }

  function installFlashsocket() {
    if (typeof WebSocket !== "function") throw new Error("shims.js: this browser has no WebSocket");
    WebSocket.__addTask = function (task) { task(); };
    var current;
    Object.defineProperty(window, "swfobject", {
      configurable: true,
      enumerable: true,
      get: function () { return current; },
      set: function (value) {
        current = value;
        if (value && typeof value === "object") {
          value.hasFlashPlayerVersion = hasFlashPlayerVersion;
          value.getFlashPlayerVersion = function () {
            return {major: FLASH_VERSION[0], minor: FLASH_VERSION[1], release: FLASH_VERSION[2]};
          };
        }
      }
    });
  }

  // ---------------------------------------------------------------------------------------------

  var installers = {
    "htmlfile": installHtmlfile,
    "xhr-multipart": installMultipart,
    "flashsocket": installFlashsocket
  };
  requested.forEach(function (name) {
    if (!Object.prototype.hasOwnProperty.call(installers, name)) {
      console.error("shims.js: unknown shim " + JSON.stringify(name));
      return;
    }
    installers[name]();
    window.SHIMS.push(name);
  });
})();
