// The herd status page. It learns its own server's State from the /events
// stream, takes the herd's topology from it, and polls every other server's
// /api/state at the Metrics address of the topology once a second. A server
// that does not answer is drawn down, and so are its links. Servers let only
// their own herd's status pages read their state.
'use strict';
(() => {
  const POLL_MS = 1000;      // how often the other servers are polled
  const TIMEOUT_MS = 1500;   // a poll slower than this counts as no answer
  const STALE_MS = 3500;     // state older than this means the server is down
  const SVGNS = 'http://www.w3.org/2000/svg';
  const VIEW = { w: 440, h: 390 };

  // servers maps a server name to what the page knows about it:
  // {name, metrics, status: 'unknown'|'up'|'down', state, seenAt, inflight, error, lines}.
  const servers = new Map();
  let self = '';       // the name of the server that served this page
  let herd = [];       // the topology, from self's State
  let herdKey = '';    // herd as JSON, to notice a change
  let edges = [];      // [{key, a, b, el, title}]
  let nodes = new Map(); // name -> {g, sub}
  let rows = new Map();  // name -> {tr, cells}
  let selected = '';   // server whose updates are listed
  let lastEvent = 0;   // Date.now() of the last event from self
  const updateRows = new Map(); // key -> tr of the updates table
  let listedTab = null; // the server whose updates updateRows holds

  const $ = id => document.getElementById(id);
  const el = (tag, attrs = {}, ...kids) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === 'class') e.className = v; else e.setAttribute(k, v);
    }
    for (const k of kids) e.append(k);
    return e;
  };
  const svg = (tag, attrs = {}) => {
    const e = document.createElementNS(SVGNS, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    return e;
  };
  const linkKey = (a, b) => (a < b ? a + '--' + b : b + '--' + a);

  function entry(name) {
    let e = servers.get(name);
    if (!e) {
      e = { name, metrics: '', status: 'unknown', state: null, seenAt: 0, inflight: false, error: '', lines: null };
      servers.set(name, e);
    }
    return e;
  }

  function accept(name, state) {
    const e = entry(name);
    noticeUpdates(e, state);
    e.state = state;
    e.status = 'up';
    e.seenAt = Date.now();
    e.error = '';
  }

  function fail(name, why) {
    const e = entry(name);
    e.status = 'down';
    e.error = why;
  }

  // noticeUpdates flashes the link each new update came over.
  function noticeUpdates(e, state) {
    const lines = new Set((state.recent || []).map(u => u.line));
    if (e.lines) {
      for (const u of state.recent || []) {
        if (!e.lines.has(u.line) && u.from !== 'client') flash(linkKey(e.name, u.from));
      }
    }
    e.lines = lines;
  }

  function flash(key) {
    const edge = edges.find(x => x.key === key);
    if (!edge) return;
    edge.el.classList.remove('flash');
    void edge.el.getBBox(); // restart the animation
    edge.el.classList.add('flash');
  }

  // ---- data sources ----

  function connect() {
    const es = new EventSource('events');
    es.addEventListener('state', ev => {
      let s;
      try { s = JSON.parse(ev.data); } catch { return; }
      lastEvent = Date.now();
      if (!self) {
        self = s.server;
        selected = selected || self;
        $('self').textContent = self;
      }
      // A server without a configured herd is drawn alone.
      const list = s.herd && s.herd.length ? s.herd
        : [{ name: s.server, addr: s.addr, metrics: '', neighbors: [] }];
      setHerd(list);
      accept(s.server, s);
      render();
    });
    es.addEventListener('error', () => {
      if (self) fail(self, 'event stream lost');
      render();
      if (es.readyState === EventSource.CLOSED) setTimeout(connect, 2000);
    });
  }

  // stateURL turns a Metrics address into its /api/state URL; an unspecified
  // host (":9000", "0.0.0.0:9000", "[::]:9000") means this page's host.
  function stateURL(metrics) {
    const i = metrics.lastIndexOf(':');
    let host = i < 0 ? metrics : metrics.slice(0, i);
    const port = i < 0 ? '' : metrics.slice(i + 1);
    if (['', '0.0.0.0', '::', '[::]'].includes(host)) host = location.hostname;
    const scheme = location.protocol === 'https:' ? 'https:' : 'http:';
    return scheme + '//' + host + (port ? ':' + port : '') + '/api/state';
  }

  function poll() {
    for (const n of herd) {
      if (n.name === self) continue;
      const e = entry(n.name);
      if (!n.metrics) {
        e.status = 'unknown';
        e.error = 'no metrics address';
        continue;
      }
      if (e.inflight) continue;
      e.inflight = true;
      // credentials: a server with a token answers a browser that has
      // logged in to its page; servers answer only their herd's origins.
      fetch(stateURL(n.metrics), { cache: 'no-store', credentials: 'include', signal: AbortSignal.timeout(TIMEOUT_MS) })
        .then(r => {
          if (!r.ok) throw new Error('HTTP ' + r.status);
          return r.json();
        })
        .then(s => accept(n.name, s),
          err => fail(n.name, err && err.name === 'TimeoutError' ? 'timed out' : 'not answering'))
        .finally(() => { e.inflight = false; render(); });
    }
  }

  function tick() {
    const now = Date.now();
    for (const e of servers.values()) {
      if (e.status === 'up' && now - e.seenAt > STALE_MS) fail(e.name, 'no recent answer');
    }
    poll();
    render();
  }

  // ---- topology ----

  function setHerd(list) {
    const key = JSON.stringify(list);
    if (key === herdKey) return;
    herdKey = key;
    herd = list;
    for (const name of [...servers.keys()]) {
      if (!herd.some(n => n.name === name)) servers.delete(name);
    }
    for (const n of herd) entry(n.name).metrics = n.metrics;
    if (!herd.some(n => n.name === selected)) selected = self;
    buildGraph();
    buildRows();
    buildTabs();
  }

  function buildGraph() {
    const g = $('graph');
    g.replaceChildren();
    nodes = new Map();
    edges = [];
    const n = herd.length;
    const cx = VIEW.w / 2, cy = VIEW.h / 2, R = n > 1 ? 150 : 0;
    const r = Math.max(16, Math.min(40, n > 1 ? (Math.PI * R / n) * 0.7 : 40));
    const pos = new Map();
    herd.forEach((node, i) => {
      const a = -Math.PI / 2 + (2 * Math.PI * i) / Math.max(n, 1);
      pos.set(node.name, { x: cx + R * Math.cos(a), y: cy + R * Math.sin(a) });
    });
    const edgeLayer = svg('g', { class: 'edges' });
    const seen = new Set();
    for (const node of herd) {
      for (const peer of node.neighbors || []) {
        const key = linkKey(node.name, peer);
        if (seen.has(key) || !pos.has(peer) || peer === node.name) continue;
        seen.add(key);
        const [a, b] = key.split('--');
        const p = pos.get(a), q = pos.get(b);
        const line = svg('line', {
          class: 'edge', x1: p.x.toFixed(1), y1: p.y.toFixed(1), x2: q.x.toFixed(1), y2: q.y.toFixed(1),
          'data-link': key, 'data-state': 'unknown',
        });
        const title = svg('title');
        line.append(title);
        edgeLayer.append(line);
        const detail = el('td', { class: 'muted' });
        const row = el('tr', { 'data-link-row': key, 'data-state': 'unknown' },
          el('td', { class: 'l' }, el('span', { class: 'status' }), `${a} — ${b}`), detail);
        edges.push({ key, a, b, el: line, title, row, detail });
      }
    }
    g.append(edgeLayer);
    $('links').tBodies[0].replaceChildren(...edges.map(e => e.row));
    const nodeLayer = svg('g', { class: 'nodes' });
    for (const node of herd) {
      const p = pos.get(node.name);
      const grp = svg('g', { class: 'node', 'data-server': node.name, 'data-state': 'unknown',
        transform: `translate(${p.x.toFixed(1)} ${p.y.toFixed(1)})` });
      if (node.name === self) grp.append(svg('circle', { class: 'self', r: r + 7 }));
      grp.append(svg('circle', { class: 'body', r }));
      const name = svg('text', { class: 'name', y: r >= 30 ? -8 : 0 });
      name.textContent = node.name.length > 10 ? node.name.slice(0, 9) + '…' : node.name;
      const sub = svg('text', { class: 'sub', y: 11 });
      if (r < 30) sub.setAttribute('visibility', 'hidden');
      const title = svg('title');
      title.textContent = `${node.name} — ${node.addr}`;
      grp.append(title, name, sub);
      nodeLayer.append(grp);
      nodes.set(node.name, { g: grp, sub });
    }
    g.append(nodeLayer);
  }

  function findLink(e, peer) {
    return e && e.state && (e.state.links || []).find(l => l.peer === peer);
  }

  // linkState: down when either end does not answer or an answering end
  // reports the link down; up when the answering ends report it up; unknown
  // when no answering end reports on it.
  function linkState(a, b) {
    const ea = servers.get(a), eb = servers.get(b);
    if (!ea || !eb) return 'unknown';
    if (ea.status === 'down' || eb.status === 'down') return 'down';
    const views = [];
    if (ea.status === 'up') { const l = findLink(ea, b); if (l) views.push(l.up); }
    if (eb.status === 'up') { const l = findLink(eb, a); if (l) views.push(l.up); }
    if (views.length === 0) return 'unknown';
    return views.every(Boolean) ? 'up' : 'down';
  }

  function describeLink(from, peer) {
    const e = servers.get(from);
    if (!e || e.status !== 'up') return `${from}: ${e && e.status === 'down' ? 'not answering' : 'no data'}`;
    const l = findLink(e, peer);
    if (!l) return `${from}: not reported`;
    return `${from}: ${l.up ? 'up' : 'down'}, queued ${l.queued}, reconnects ${l.reconnects}, dropped ${l.dropped}, synced ${l.syncRecords}`;
  }

  // linkSummary sums up a link's counters as both answering ends see them.
  function linkSummary(edge) {
    const silent = [edge.a, edge.b].filter(n => servers.get(n) && servers.get(n).status === 'down');
    if (silent.length) return silent.join(' and ') + ' not answering';
    const ls = [findLink(servers.get(edge.a), edge.b), findLink(servers.get(edge.b), edge.a)].filter(Boolean);
    if (!ls.length) return 'no report';
    const sum = k => ls.reduce((t, l) => t + (l[k] || 0), 0);
    const max = k => Math.max(...ls.map(l => l[k] || 0));
    const parts = [`queued ${fmtNum(sum('queued'))}`, `dropped ${fmtNum(sum('dropped'))}`,
      `${fmtNum(max('reconnects'))} reconnect${max('reconnects') === 1 ? '' : 's'}`];
    return parts.join(' · ');
  }

  // ---- tables ----

  const COLS = [
    ['clients', s => s.clients],
    ['iamat', s => s.counters.iamat],
    ['whatsat', s => s.counters.whatsat],
    ['invalid', s => s.counters.invalid],
    ['conns', s => s.counters.conns_open],
    ['flood_in', s => s.counters.flood_in],
    ['flood_out', s => s.counters.flood_out],
    ['links', s => {
      const ls = s.links || [];
      return ls.length ? `${ls.filter(l => l.up).length}/${ls.length}` : undefined;
    }],
    ['uptime', s => since(s.started)],
  ];

  function buildRows() {
    const body = $('servers').tBodies[0];
    body.replaceChildren();
    rows = new Map();
    for (const node of herd) {
      const name = el('span', { class: 'name' }, node.name);
      const first = el('td', { class: 'l', title: `client ${node.addr || '—'} · status ${node.metrics || '—'}` },
        el('span', { class: 'status' }), name);
      const cells = COLS.map(() => el('td'));
      const tr = el('tr', { 'data-row': node.name, 'data-state': 'unknown' }, first, ...cells);
      body.append(tr);
      rows.set(node.name, { tr, cells });
    }
  }

  function buildTabs() {
    const tabs = $('tabs');
    tabs.replaceChildren();
    for (const node of herd) {
      const b = el('button', { type: 'button', role: 'tab', 'data-tab': node.name }, node.name);
      b.addEventListener('click', () => { selected = node.name; render(); });
      tabs.append(b);
    }
  }

  const fmtNum = v => {
    if (v === undefined || v === null) return '—';
    if (typeof v !== 'number') return String(v);
    return Number.isInteger(v) ? v.toLocaleString('en-US') : v.toFixed(2);
  };

  function since(t) {
    const ms = Date.now() - Date.parse(t);
    if (!t || !isFinite(ms) || Date.parse(t) <= 0) return undefined;
    return duration(ms);
  }

  function duration(ms) {
    const s = Math.max(0, Math.floor(ms / 1000));
    const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60;
    if (d) return `${d}d ${h}h`;
    if (h) return `${h}h ${m}m`;
    if (m) return `${m}m ${s % 60}s`;
    return `${s}s`;
  }

  function clock(t) {
    const d = new Date(t);
    if (isNaN(d)) return '—';
    const p = (n, w = 2) => String(n).padStart(w, '0');
    return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
  }

  function ago(t) {
    const ms = Date.now() - Date.parse(t);
    if (!isFinite(ms)) return '';
    if (ms < 1000) return 'just now';
    return duration(ms) + ' ago';
  }

  // reach says how many servers hold line among their recent updates, and
  // how long it took from the first of them to the last.
  function reach(line) {
    let n = 0, lo = Infinity, hi = -Infinity;
    for (const e of servers.values()) {
      const u = e.state && (e.state.recent || []).find(x => x.line === line);
      if (!u) continue;
      n++;
      const t = Date.parse(u.time);
      lo = Math.min(lo, t);
      hi = Math.max(hi, t);
    }
    const spread = n > 1 && isFinite(hi - lo) ? ` in ${hi - lo < 1000 ? (hi - lo) + ' ms' : duration(hi - lo)}` : '';
    return `${n}/${herd.length}${spread}`;
  }

  function renderUpdates() {
    for (const b of $('tabs').children) b.setAttribute('aria-selected', String(b.dataset.tab === selected));
    const e = servers.get(selected);
    const list = (e && e.state && e.state.recent) || [];
    const body = $('updates').tBodies[0];
    // Rows are highlighted when they arrive, not when a tab is opened.
    const highlight = listedTab === selected;
    listedTab = selected;
    const keep = new Set();
    list.forEach((u, i) => {
      const key = u.time + '|' + u.line;
      keep.add(key);
      let tr = updateRows.get(key);
      if (!tr) {
        const f = u.line.split(/\s+/);
        const from = u.from === 'client'
          ? el('span', { class: 'badge client' }, 'client')
          : el('span', { class: 'badge peer' }, 'via ' + u.from);
        const id = el('span', { class: 'client-id mono', title: u.client }, u.client);
        tr = el('tr', { 'data-update-client': u.client, class: highlight ? 'new' : '' },
          el('td', { class: 'l mono' }, clock(u.time), el('span', { class: 'muted' }, '')),
          el('td', { class: 'l' }, id),
          el('td', { class: 'l mono' }, f[4] || ''),
          el('td', { class: 'l' }, f[1] || ''),
          el('td', { class: 'l' }, from),
          el('td', { class: 'l muted' }, ''));
        tr.title = u.line;
        setTimeout(() => tr.classList.remove('new'), 2000);
        updateRows.set(key, tr);
      }
      tr.cells[0].lastChild.textContent = '  ' + ago(u.time);
      tr.cells[5].textContent = reach(u.line);
      if (body.children[i] !== tr) body.insertBefore(tr, body.children[i] || null);
    });
    for (const [key, tr] of updateRows) {
      if (!keep.has(key)) { tr.remove(); updateRows.delete(key); }
    }
    const empty = $('updates-empty');
    empty.hidden = list.length > 0;
    if (!list.length) empty.textContent = e && e.status === 'down' && !e.state
      ? `${selected} is not answering.` : 'No updates yet.';
  }

  // ---- rendering ----

  function render() {
    let answering = 0, linksUp = 0, clients = 0;
    for (const node of herd) {
      const e = entry(node.name);
      if (e.status === 'up') answering++;
      if (e.state && e.status === 'up') clients = Math.max(clients, e.state.clients || 0);
      const n = nodes.get(node.name);
      if (n) {
        n.g.setAttribute('data-state', e.status);
        n.sub.textContent = e.status === 'down' ? 'down'
          : e.state ? `${fmtNum(e.state.clients)} client${e.state.clients === 1 ? '' : 's'}` : '…';
      }
      const r = rows.get(node.name);
      if (r) {
        r.tr.setAttribute('data-state', e.status);
        const s = e.state ? { ...e.state, counters: e.state.counters || {} } : null;
        COLS.forEach(([, get], i) => { r.cells[i].textContent = s ? fmtNum(get(s)) : '—'; });
        r.tr.title = s
          ? Object.entries(s.counters).sort().map(([k, v]) => `${k} ${fmtNum(v)}`).join('\n')
          : '';
      }
    }
    for (const edge of edges) {
      const st = linkState(edge.a, edge.b);
      if (edge.el.getAttribute('data-state') !== st) edge.el.setAttribute('data-state', st);
      if (st === 'up') linksUp++;
      edge.title.textContent = `${edge.a} — ${edge.b}: ${st}\n${describeLink(edge.a, edge.b)}\n${describeLink(edge.b, edge.a)}`;
      edge.row.setAttribute('data-state', st);
      edge.row.title = edge.title.textContent;
      edge.detail.textContent = linkSummary(edge);
    }

    const sum = $('summary');
    const b = v => el('b', {}, String(v));
    sum.replaceChildren(
      b(herd.length), ' servers · ', b(answering), ' answering · ',
      b(`${linksUp}/${edges.length}`), ' links up · ', b(clients), ' clients known');

    const live = $('live');
    const fresh = lastEvent && Date.now() - lastEvent < STALE_MS;
    live.dataset.state = fresh ? 'live' : lastEvent ? 'down' : 'connecting';
    $('live-text').textContent = fresh ? 'live · ' + clock(lastEvent).slice(0, 8)
      : lastEvent ? 'reconnecting…' : 'connecting…';

    const problems = herd.map(n => servers.get(n.name))
      .filter(e => e && e.status !== 'up' && e.error)
      .map(e => `${e.name}: ${e.error}${e.metrics ? ' (' + e.metrics + ')' : ''}`);
    $('note').textContent = problems.join(' · ');
    const down = herd.length - answering;
    document.title = (down > 0 && self ? `(${down} down) ` : '') + 'herd · ' + (self || 'status');

    renderUpdates();
  }

  connect();
  setInterval(tick, POLL_MS);
})();
