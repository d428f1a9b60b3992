// Live updates for the ironlime dashboard (docs/dashboard.md). The pages are complete without this
// file; it only listens to /dashboard/events (server-sent events) and repaints counters and rows.
(function () {
  'use strict';
  if (typeof EventSource === 'undefined') return;
  var live = document.getElementById('live');
  // The rows this page shows: the server sends each one's current state, whatever else changed.
  var watched = [];
  document.querySelectorAll('[data-agent]').forEach(function (element) {
    watched.push('agent=' + encodeURIComponent(element.getAttribute('data-agent')));
  });
  var url = '/dashboard/events' + (watched.length > 0 ? '?' + watched.join('&') : '');
  // A run of right-to-left letters (lib/dashboard/isolated-text.ts, same pattern): each is written in its
  // own isolate, as the pages are, or it reorders the text a node chose around it (a path reads as another).
  var RTL_RUN = /[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufeff\u{10800}-\u{10fff}\u{1e800}-\u{1efff}](?:[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufeff\u{10800}-\u{10fff}\u{1e800}-\u{1efff}\p{M} ]*[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufeff\u{10800}-\u{10fff}\u{1e800}-\u{1efff}\p{M}])?/gu;
  function setIsolatedText(cell, text) {
    cell.textContent = '';
    var from = 0;
    text.replace(RTL_RUN, function (run, at) {
      cell.appendChild(document.createTextNode(text.slice(from, at)));
      var isolate = document.createElement('bdi');
      isolate.textContent = run;
      cell.appendChild(isolate);
      from = at + run.length;
      return run;
    });
    cell.appendChild(document.createTextNode(text.slice(from)));
  }
  function setLive(state, text) {
    if (!live) return;
    live.setAttribute('data-state', state);
    live.textContent = text;
  }
  // Why the rows are unknown (until the stream sends them again), else undefined.
  var rowsUnknown;
  // Rows shown in a colour nothing vouches for now: pending, "unknown", until the server sends them again.
  function markRowsUnknown(why) {
    document.querySelectorAll('[data-agent]').forEach(function (element) {
      rowsUnknown = why;
      element.classList.remove('status-pass', 'status-fail', 'status-pending', 'status-live');
      element.classList.add('status-pending');
      ['status', 'state'].forEach(function (name) {
        var cell = element.querySelector('[data-field="' + name + '"]');
        if (cell) cell.textContent = 'unknown: ' + why;
      });
    });
  }
  function markCountsUnknown() {
    document.querySelectorAll('[data-count]').forEach(function (element) {
      element.textContent = '?';
    });
  }
  // Nodes failing (FAIL, liveness failed or unreachable) when the first overview came: more since is
  // flagged in the footer until a reload, also once they are back (the operator may not have seen them).
  var failingAtStart;
  var mostMore = 0;
  function showFailing(failing) {
    var line = document.getElementById('fleet-failing');
    var news = document.getElementById('new-failures');
    if (!line || !news) return;
    if (failingAtStart === undefined) failingAtStart = failing;
    line.hidden = false;
    mostMore = Math.max(mostMore, failing - failingAtStart);
    line.classList.toggle('status-fail', mostMore > 0);
    news.textContent = mostMore > 0 ? ' (+' + mostMore + ' since this page opened: reload or see the overview)' : '';
  }
  var opened = false;
  var source;
  // The stream ends every tick with a `tick` event (its period in ms). Ten ticks and 5 s more without
  // one (from the page's load, or the last) and nothing vouches for the rows and counts: they are
  // unknown. A stream still open (the verifier's host gone without closing the connection, which the
  // browser may not notice for hours; a stalled process) is replaced by a new one, which sends every
  // row again; a page whose stream was refused or given up stays unknown until it is reloaded.
  var tickMs = 2000;
  var silence;
  // When the counts shown were read: the page's load, then each overview. The stream asks the next
  // overview only once the last arrived (one read at a time for every tab and tenant, up to the
  // database's 30 s statement bound each), so ticks may go on while the counts grow old: past the same
  // bound as a silent stream they are unknown, not left as they were.
  var countsReadAt = Date.now();
  var countsTooOld = false;
  function expectTick() {
    clearTimeout(silence);
    silence = setTimeout(function () {
      markCountsUnknown();
      if (source.readyState === EventSource.CLOSED) {
        markRowsUnknown('live updates off (reload to refresh)');
        return;
      }
      markRowsUnknown('no live update for ' + Math.round((10 * tickMs + 5000) / 1000) + ' s');
      setLive('off', 'live updates silent: reconnecting');
      source.close();
      connect();
      expectTick();
    }, 10 * tickMs + 5000);
  }
  function connect() {
    source = new EventSource(url);
    listen(source);
  }
  function listen(source) {
    source.addEventListener('open', function () {
      opened = true;
      setLive('on', 'live');
      expectTick();
    });
    source.addEventListener('tick', function (event) {
      var period = Number(event.data);
      if (period > 0) tickMs = period;
      expectTick();
      var age = Date.now() - countsReadAt;
      if (!countsTooOld && age > 10 * tickMs + 5000) {
        countsTooOld = true;
        markCountsUnknown();
        setLive('unavailable', 'live: counts not read for ' + Math.round(age / 1000) + ' s, unknown');
      }
    });
    source.addEventListener('error', function () {
      // A refused stream (503: no slot free) is not retried by the browser; a dropped one is. A page
      // whose live view never opened is the snapshot it was rendered as until `expectTick` gives up on
      // it; one that was live no longer is.
      if (opened) {
        markRowsUnknown('live updates stopped');
        markCountsUnknown();
      }
      if (source.readyState === EventSource.CLOSED) setLive('off', 'live updates off (reload to refresh)');
      else setLive('off', 'live updates interrupted: retrying');
    });
    // The verifier could not read its database: what it last sent is not known to hold any more.
    source.addEventListener('unavailable', function (event) {
      var rows = JSON.parse(event.data) === 'rows';
      if (rows) markRowsUnknown('the verifier cannot read its database');
      else markCountsUnknown();
      setLive('unavailable', 'live: the verifier cannot read its database, ' + (rows ? 'states' : 'counts') + ' unknown');
    });
    source.addEventListener('overview', function (event) {
      var overview = JSON.parse(event.data);
      countsReadAt = Date.now();
      countsTooOld = false;
      var counts = {
        total: overview.total,
        PASS: overview.byStatus.PASS,
        FAIL: overview.byStatus.FAIL,
        PENDING: overview.byStatus.PENDING,
        stale: overview.stalePasses,
        perMinute: overview.attestationsLastMinute,
        failuresHour: overview.failuresLastHour,
        late: overview.lateRounds,
        failing: overview.byStatus.FAIL,
      };
      overview.byState.forEach(function (row) {
        counts['state-' + row.state] = row.count;
      });
      Object.keys(overview.byClaimedTrustLevel).forEach(function (level) {
        counts['trust-' + level] = overview.byClaimedTrustLevel[level];
      });
      // Nodes without a TPM per mode (id-secret, id-only) and status; failed and unreachable ones are failing.
      Object.keys(overview.byLiveness).forEach(function (mode) {
        var byStatus = overview.byLiveness[mode];
        Object.keys(byStatus).forEach(function (status) {
          counts['liveness-' + mode + '-' + status] = byStatus[status];
        });
        counts.failing += byStatus.failed + byStatus.unreachable;
      });
      document.querySelectorAll('[data-count]').forEach(function (element) {
        var key = element.getAttribute('data-count');
        element.textContent = String(counts[key] === undefined ? 0 : counts[key]);
      });
      showFailing(counts.failing);
      // The counts are read, not the rows: the footer goes on saying why they are unknown.
      if (rowsUnknown === undefined) setLive('on', 'live · ' + new Date().toLocaleTimeString());
    });
    // Shown nodes deleted since: no longer attested, so never left in the colour they had.
    source.addEventListener('gone', function (event) {
      rowsUnknown = undefined;
      JSON.parse(event.data).forEach(function (agentId) {
        document.querySelectorAll('[data-agent]').forEach(function (element) {
          if (element.getAttribute('data-agent') !== agentId) return;
          element.classList.remove('status-pass', 'status-fail', 'status-pending', 'status-live');
          element.classList.add('status-pending');
          ['status', 'state'].forEach(function (name) {
            var cell = element.querySelector('[data-field="' + name + '"]');
            if (cell) cell.textContent = 'no longer enrolled (reload to refresh)';
          });
        });
      });
    });
    // After rows were unknown the stream sends every one of them again (all on a stream's first tick).
    source.addEventListener('agents', function (event) {
      rowsUnknown = undefined;
      JSON.parse(event.data).forEach(function (agent) {
        document.querySelectorAll('[data-agent]').forEach(function (element) {
          if (element.getAttribute('data-agent') !== agent.agentId) return;
          element.classList.remove('status-pass', 'status-fail', 'status-pending', 'status-live');
          element.classList.add('status-' + agent.tone);
          var fields = {
            status: agent.status,
            state: element.tagName === 'TR' ? agent.tableState : agent.state === null ? agent.label : agent.label + ' (' + agent.state + ')',
            trust: agent.trustShown,
            seen: agent.lastSeen || '—',
            failure: agent.lastFailure || '—',
            attestations: String(agent.attestationCount),
            success: agent.lastSuccess || '—',
            event: agent.lastEventId || (element.tagName === 'TR' ? '' : '—'),
          };
          Object.keys(fields).forEach(function (name) {
            var cell = element.querySelector('[data-field="' + name + '"]');
            if (cell) setIsolatedText(cell, fields[name]);
          });
        });
      });
    });
  }
  connect();
  expectTick();
})();
