// Live updates of the eventpipeline web view. The server sends an "update"
// event (server-sent events) when records have arrived; the page is then
// fetched again and its live part swapped in, without a reload. The HTML
// comes from the server, where every text from the records was escaped.
"use strict";
(function () {
  const status = document.getElementById("live-status");
  if (document.body.dataset.live !== "on" || !window.EventSource) return;
  let busy = false, again = false;
  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    fetch(location.href, { credentials: "same-origin", cache: "no-store" })
      .then((r) => {
        // The session has ended (its lifetime passed, or the view was
        // restarted): load the page again, which then offers the login.
        if (r.status === 401) { location.reload(); return Promise.reject(new Error(r.status)); }
        return r.ok || r.status === 400 || r.status === 404 ? r.text() : Promise.reject(new Error(r.status));
      })
      .then((html) => {
        const fresh = new DOMParser().parseFromString(html, "text/html").getElementById("live");
        const live = document.getElementById("live");
        if (fresh && live) live.replaceWith(document.adoptNode(fresh));
      })
      .catch(() => { status.textContent = "update failed"; status.className = "off"; })
      .finally(() => { busy = false; if (again) { again = false; refresh(); } });
  }
  // EventSource tries again by itself after a network error, but not after
  // an answer other than 200, such as the 503 of a stream over the
  // server's limit or the 401 of an ended session: then the page is
  // fetched (which finds out about the session) and a new stream opened,
  // after a wait that doubles.
  let wait = 2000;
  function connect() {
    const events = new EventSource("events");
    events.addEventListener("update", refresh);
    events.onopen = () => { wait = 2000; status.textContent = "live"; status.className = "on"; };
    events.onerror = () => {
      status.textContent = "reconnecting"; status.className = "off";
      if (events.readyState === EventSource.CLOSED) {
        refresh();
        setTimeout(connect, wait * (1 + Math.random() / 2));
        wait = Math.min(2 * wait, 60000);
      }
    };
  }
  connect();
})();
