// live.js is the console's only script: it shows new security events and
// scan progress as the server sends them (server-sent events from
// /events). Every page works without it. It writes text only, never
// markup, so nothing the server relays can run as code.
(function () {
  'use strict';
  var list = document.getElementById('live-events');
  var scan = document.getElementById('scan-state');
  if (!list && !scan) {
    return;
  }
  var params = [];
  if (list) {
    params.push('after=' + encodeURIComponent(list.getAttribute('data-after') || '0'));
  }
  if (scan) {
    params.push('image=' + encodeURIComponent(scan.getAttribute('data-image')));
  }
  var source = new EventSource('/events?' + params.join('&'));
  if (list) {
    source.addEventListener('audit', function (e) {
      var ev = JSON.parse(e.data);
      var item = document.createElement('li');
      var parts = [ev.time, ev.action, ev.actor, ev.resource, ev.outcome];
      if (ev.detail) {
        parts.push(ev.detail);
      }
      item.textContent = parts.join(' · ');
      item.className = 'live-new';
      if (ev.action === 'runtime.block' || ev.action === 'runtime.detect') {
        item.className += ' ' + ev.action.replace('.', '-');
      }
      list.insertBefore(item, list.firstChild);
      while (list.children.length > 50) {
        list.removeChild(list.lastChild);
      }
      var empty = document.getElementById('live-empty');
      if (empty) {
        empty.hidden = true;
      }
    });
  }
  if (scan) {
    source.addEventListener('scan', function (e) {
      var label = scan.getAttribute('data-label-' + e.data);
      scan.textContent = label || e.data;
      if (e.data === 'done' || e.data === 'failed') {
        if (scan.getAttribute('data-busy') === 'true') {
          source.close();
          window.location.reload();
        }
      } else {
        scan.setAttribute('data-busy', 'true');
      }
    });
  }
}());
