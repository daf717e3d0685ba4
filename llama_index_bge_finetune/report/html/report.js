/* The report's page logic: reads the inlined JSON, draws Vega-Lite charts, pages the question browser.
   All text from the data goes in through textContent, never as HTML. */
(function () {
  'use strict';
  performance.mark('report:start');
  var D = JSON.parse(document.getElementById('report-data').textContent);
  var PCT = Math.round(D.confidence * 100);
  var SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';  // an identifier only; never fetched
  var pending = [];
  var state = { views: {}, errors: [] };
  window.__report = state;

  function $(sel) { return document.querySelector(sel); }
  function el(tag, attrs) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        if (k === 'text') node.textContent = attrs[k];
        else if (k === 'cls') node.className = attrs[k];
        else node.setAttribute(k, attrs[k]);
      });
    }
    for (var i = 2; i < arguments.length; i++) {
      var kid = arguments[i];
      if (kid == null) continue;
      node.appendChild(typeof kid === 'string' ? document.createTextNode(kid) : kid);
    }
    return node;
  }
  function fmt(x, d) { return x == null || isNaN(x) ? '–' : Number(x).toFixed(d == null ? 3 : d); }
  function signed(x, d) { return (x >= 0 ? '+' : '') + fmt(x, d); }
  function pval(p) { return p < 0.001 ? '<0.001' : fmt(p, 3); }
  function table(headers, rows, numeric) {
    var t = el('table');
    var tr = el('tr');
    headers.forEach(function (h, i) { tr.appendChild(el('th', { text: h, cls: numeric && numeric[i] ? 'num' : '' })); });
    t.appendChild(el('thead', null, tr));
    var body = el('tbody');
    rows.forEach(function (r) {
      var row = el('tr');
      r.forEach(function (c, i) {
        var td = el('td', { cls: numeric && numeric[i] ? 'num' : '' });
        if (c instanceof Node) td.appendChild(c); else td.textContent = c == null ? '' : String(c);
        row.appendChild(td);
      });
      body.appendChild(row);
    });
    t.appendChild(body);
    return el('div', { cls: 'table-wrap' }, t);
  }
  function kv(obj) {
    var rows = Object.keys(obj).filter(function (k) { return obj[k] != null && obj[k] !== ''; }).map(function (k) {
      var v = obj[k];
      return [k, typeof v === 'object' ? JSON.stringify(v) : String(v)];
    });
    var t = table(['setting', 'value'], rows);
    t.firstChild.classList.add('kv');
    return t;
  }
  function fail(where, err) {
    state.errors.push(where + ': ' + (err && err.message ? err.message : err));
    var box = $(where);
    if (box) box.appendChild(el('p', { cls: 'error', text: 'Could not draw this: ' + (err && err.message ? err.message : err) }));
  }
  // Charts below the fold are drawn when they come near the viewport, so the page opens fast.
  var observer = 'IntersectionObserver' in window ? new IntersectionObserver(function (entries) {
    entries.forEach(function (e) {
      if (e.isIntersecting && e.target.__draw) { observer.unobserve(e.target); e.target.__draw(); e.target.__draw = null; }
    });
  }, { rootMargin: '300px' }) : null;

  function chart(target, spec, name, lazy) {
    spec.$schema = SCHEMA;
    spec.config = Object.assign({ view: { stroke: null }, axis: { labelFontSize: 12, titleFontSize: 12 } }, spec.config || {});
    var node = typeof target === 'string' ? $(target) : target;
    function draw() {
      return vegaEmbed(node, spec, { actions: false, renderer: 'svg' }).then(function (res) {
        state.views[name] = res.view;
        node.setAttribute('data-drawn', '1');
        return res.view;
      }).catch(function (e) { fail(typeof target === 'string' ? target : '#' + node.id, e); });
    }
    if (lazy && observer) {
      node.__draw = draw;
      observer.observe(node);
      return null;
    }
    var p = draw();
    pending.push(p);
    return p;
  }

  // ------------------------------------------------------------------ header and verdict
  var ds = D.dataset;
  $('#subtitle').textContent = (ds.name ? ds.name + ' · ' : '') + ds.n_queries + ' questions over ' + ds.n_corpus +
    ' passages · questions: ' + ds.query_source + ' · ' + D.generated;

  (function verdict() {
    var V = D.verdict, box = $('#verdict-body');
    box.appendChild(el('p', { cls: 'headline', text: V.headline }));
    if (V.best) box.appendChild(el('p', { cls: 'diff ' + (V.best_beyond_noise ? 'real better' : 'noise'), text: V.best }));
    (V.pipelines || []).forEach(function (t) { box.appendChild(el('p', { cls: 'pipeline', text: t })); });
    var cards = el('div', { cls: 'cards' });
    var scope = D.scopes[0];
    D.models.forEach(function (m) {
      var e = scope.estimates.filter(function (r) { return r.model === m && r.metric + '@' + r.k === D.primary; })[0];
      cards.appendChild(el('div', { cls: 'card' + (m === D.best ? ' best' : '') },
        el('div', { cls: 'muted', text: m + (m === D.base ? ' (base)' : '') + (m === D.best ? ' · best' : '') }),
        el('div', { cls: 'big', text: fmt(e.value) }),
        el('div', { cls: 'muted', text: D.primary + ', ' + PCT + '% interval ' + fmt(e.lo) + ' – ' + fmt(e.hi) })));
    });
    box.appendChild(cards);
    var ul = el('ul');
    V.models.forEach(function (line) { ul.appendChild(el('li', { text: line })); });
    box.appendChild(ul);
    V.differences.forEach(function (d) {
      box.appendChild(el('p', { cls: 'diff ' + (d.significant ? 'real ' + (d.better ? 'better' : 'worse') : 'noise'), text: d.text }));
    });
    if (V.scope) box.appendChild(el('p', { text: V.scope }));
    box.appendChild(el('p', { cls: 'caveat', text: V.query_source }));
    box.appendChild(el('p', { cls: 'muted', text: V.metric_help }));
  })();

  // ------------------------------------------------------------------ metrics
  (function metrics() {
    var metricSel = $('#metric-select'), scopeSel = $('#scope-select');
    D.metric_names.forEach(function (m) { metricSel.appendChild(el('option', { value: m, text: m })); });
    metricSel.value = D.primary.split('@')[0];
    D.scopes.forEach(function (s, i) {
      scopeSel.appendChild(el('option', { value: String(i), text: s.name + ' (' + s.n_corpus + ' passages)' }));
    });
    function spec(scope) {
      var tip = [{ field: 'model' }, { field: 'k', title: 'k' }, { field: 'metric' },
                 { field: 'interval', title: 'mean [' + PCT + '% CI]' }];
      return {
        width: 'container', height: 280, autosize: { type: 'fit-x', contains: 'padding' },
        data: { name: 'rows', values: scope.estimates },
        params: [{ name: 'metric', value: metricSel.value }],
        transform: [{ filter: 'datum.metric === metric' },
                    { calculate: "format(datum.value, '.3f') + ' [' + format(datum.lo, '.3f') + ', ' + format(datum.hi, '.3f') + ']'", as: 'interval' }],
        encoding: {
          x: { field: 'k', type: 'ordinal', title: 'k (passages retrieved)', axis: { labelAngle: 0 } },
          xOffset: { field: 'model', sort: D.models },
          color: { field: 'model', type: 'nominal', sort: D.models, title: 'model' }
        },
        layer: [
          { name: 'bars', mark: { type: 'bar' }, encoding: { y: { field: 'value', type: 'quantitative', title: 'score', scale: { domain: [0, 1] } }, tooltip: tip } },
          { mark: { type: 'errorbar', ticks: true, color: '#333' }, encoding: { y: { field: 'lo', type: 'quantitative', title: 'score' }, y2: { field: 'hi' }, tooltip: tip } }
        ]
      };
    }
    function drawTable(scope) {
      var models = D.models, others = models.filter(function (m) { return m !== D.base; });
      var est = {}, dif = {};
      scope.estimates.forEach(function (r) { est[r.model + '|' + r.metric + '@' + r.k] = r; });
      scope.differences.forEach(function (r) { dif[r.model + '|' + r.metric + '@' + r.k] = r; });
      var keys = [];
      D.metric_names.forEach(function (m) { D.k_values.forEach(function (k) { keys.push(m + '@' + k); }); });
      var headers = ['metric'].concat(models.map(function (m) { return m + ' [' + PCT + '% CI]'; }),
        others.map(function (m) { return m + ' − ' + D.base + ' (p)'; }));
      var numeric = headers.map(function (_, i) { return i > 0; });
      var rows = keys.map(function (key) {
        return [key].concat(models.map(function (m) {
          var e = est[m + '|' + key];
          return e ? fmt(e.value) + ' [' + fmt(e.lo) + ', ' + fmt(e.hi) + ']' : '–';
        }), others.map(function (m) {
          var d = dif[m + '|' + key];
          if (!d) return '–';
          var span = el('span', { text: signed(d.diff) + ' [' + signed(d.lo) + ', ' + signed(d.hi) + '] (p ' + pval(d.p) + ')' });
          if (d.p < 0.05) span.style.color = d.diff > 0 ? 'var(--win)' : 'var(--loss)';
          return span;
        }));
      });
      var box = $('#metric-table');
      box.textContent = '';
      box.appendChild(el('p', { cls: 'muted', text: scope.n_queries + ' questions searched over ' + scope.n_corpus +
        ' passages (' + scope.name + '). Coloured differences are real (p < 0.05, paired test).' }));
      box.appendChild(table(headers, rows, numeric));
    }
    function draw() {
      var scope = D.scopes[Number(scopeSel.value)];
      chart('#metric-chart', spec(scope), 'metrics');
      drawTable(scope);
    }
    metricSel.addEventListener('change', function () {
      var view = state.views.metrics;
      if (view) view.signal('metric', metricSel.value).runAsync();
    });
    scopeSel.addEventListener('change', draw);
    draw();
  })();

  performance.mark('report:metrics');
  // ------------------------------------------------------------------ questions
  function decodeQuestions() {
    var b64 = document.getElementById('question-data').textContent.trim();
    var bin = atob(b64), bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'));
    return new Response(stream).text().then(JSON.parse);
  }

  var Q = null, rows = [], view = [], ui = { page: 0, size: 50, open: {} };
  var nModels = D.models.length, baseI = 0, bestI = Math.max(0, D.models.indexOf(D.best));
  var compareI = bestI !== baseI ? bestI : (nModels > 1 ? 1 : 0);

  function setupQuestions(data) {
    Q = data;
    performance.mark('report:questions');
    rows = Q.q.map(function (r, i) {
      var expected = {};
      r[2].forEach(function (p) { expected[p] = true; });
      var ranks = r[4].map(function (flat) {
        for (var j = 0; j < flat.length; j += 2) if (expected[flat[j]]) return j / 2 + 1;
        return null;
      });
      var change = nModels > 1 ? r[3][compareI] - r[3][baseI] : 0;
      return { i: i, id: r[0], text: r[1], expected: r[2], scores: r[3], retrieved: r[4], ranks: ranks, change: change,
               hay: (r[0] + ' ' + r[1] + ' ' + r[2].map(function (p) { return Q.pid[p]; }).join(' ')).toLowerCase() };
    });
    var cmpName = D.models[compareI];
    $('#questions-help').textContent = 'Every evaluated question with what each model retrieved. Change = ' + Q.metric + ' of ' +
      cmpName + ' minus ' + D.base + ': green rows are wins for ' + cmpName + ', red rows losses. Click a row for the passages.';
    var sort = $('#q-sort');
    [['worst', 'Worst questions of ' + D.best + ' first'], ['gain', 'Biggest gain first'], ['loss', 'Biggest loss first'],
     ['order', 'Dataset order']].forEach(function (o) { sort.appendChild(el('option', { value: o[0], text: o[1] })); });
    var filter = $('#q-filter');
    [['all', 'all questions'], ['win', 'wins of ' + cmpName], ['loss', 'losses of ' + cmpName], ['tie', 'ties'],
     ['miss', 'expected passage not retrieved by ' + D.best]].forEach(function (o) {
      filter.appendChild(el('option', { value: o[0], text: o[1] }));
    });
    var head = el('tr', null, el('th', { text: '#', cls: 'num' }), el('th', { text: 'question' }), el('th', { text: 'expected passage' }));
    D.models.forEach(function (m) { head.appendChild(el('th', { cls: 'num', text: m + ': rank · ' + Q.metric })); });
    if (nModels > 1) head.appendChild(el('th', { cls: 'num', text: 'change' }));
    $('#q-table thead').appendChild(head);
    var timer = null;
    $('#q-search').addEventListener('input', function () { clearTimeout(timer); timer = setTimeout(refresh, 120); });
    sort.addEventListener('change', refresh);
    filter.addEventListener('change', refresh);
    $('#q-prev').addEventListener('click', function () { ui.page -= 1; render(); });
    $('#q-next').addEventListener('click', function () { ui.page += 1; render(); });
    refresh();
  }

  function refresh() {
    var needle = $('#q-search').value.trim().toLowerCase(), mode = $('#q-sort').value, show = $('#q-filter').value;
    view = rows.filter(function (r) {
      if (needle && r.hay.indexOf(needle) < 0) return false;
      if (show === 'win') return r.change > 0;
      if (show === 'loss') return r.change < 0;
      if (show === 'tie') return r.change === 0;
      if (show === 'miss') return r.ranks[bestI] === null;
      return true;
    });
    var cmp = {
      worst: function (a, b) { return a.scores[bestI] - b.scores[bestI] || a.change - b.change || a.i - b.i; },
      gain: function (a, b) { return b.change - a.change || a.i - b.i; },
      loss: function (a, b) { return a.change - b.change || a.i - b.i; },
      order: function (a, b) { return a.i - b.i; }
    }[mode];
    view.sort(cmp);
    ui.page = 0;
    render();
  }

  function render() {
    var pages = Math.max(1, Math.ceil(view.length / ui.size));
    ui.page = Math.min(Math.max(0, ui.page), pages - 1);
    var start = ui.page * ui.size, slice = view.slice(start, start + ui.size);
    var body = $('#q-table tbody');
    body.textContent = '';
    slice.forEach(function (r) {
      var cls = r.change > 0 ? 'win' : (r.change < 0 ? 'loss' : 'tie');
      var tr = el('tr', { cls: 'row ' + cls, 'data-qid': r.id },
        el('td', { cls: 'num', text: String(r.i + 1) }), el('td', { text: r.text }),
        el('td', { cls: 'muted', title: r.expected.map(function (p) { return Q.pid[p]; }).join(', '),
          text: r.expected.map(function (p) { return Q.p[p].length > 90 ? Q.p[p].slice(0, 90) + '…' : Q.p[p]; }).join(' | ') }));
      D.models.forEach(function (_, m) {
        tr.appendChild(el('td', { cls: 'num', text: (r.ranks[m] === null ? '—' : '#' + r.ranks[m]) + ' · ' + fmt(r.scores[m], 2) }));
      });
      if (nModels > 1) tr.appendChild(el('td', { cls: 'num ' + (r.change > 0 ? 'up' : r.change < 0 ? 'down' : ''), text: r.change === 0 ? '0' : signed(r.change, 2) }));
      tr.addEventListener('click', function () { ui.open[r.id] = !ui.open[r.id]; render(); });
      body.appendChild(tr);
      if (ui.open[r.id]) body.appendChild(detail(r));
    });
    $('#q-status').textContent = view.length === rows.length ? rows.length + ' questions.' :
      view.length + ' of ' + rows.length + ' questions match.';
    $('#q-page').textContent = view.length ? 'Showing ' + (start + 1) + '–' + (start + slice.length) + ' of ' + view.length : 'Nothing matches.';
    $('#q-prev').disabled = ui.page === 0;
    $('#q-next').disabled = ui.page >= pages - 1;
  }

  function detail(r) {
    var cols = D.models.length + 2;
    var box = el('div');
    box.appendChild(el('h3', { text: 'Expected passage' }));
    r.expected.forEach(function (p) {
      box.appendChild(el('div', { cls: 'muted', text: Q.pid[p] }));
      box.appendChild(el('div', { cls: 'passage', text: Q.p[p] }));
    });
    var expected = {};
    r.expected.forEach(function (p) { expected[p] = true; });
    var grid = el('div', { cls: 'detail-grid' });
    D.models.forEach(function (m, mi) {
      var list = el('ol', { cls: 'retrieved' });
      var flat = r.retrieved[mi];
      for (var j = 0; j < flat.length; j += 2) {
        var hit = !!expected[flat[j]];
        var text = Q.p[flat[j]];
        list.appendChild(el('li', { cls: hit ? 'hit' : '', title: text },
          el('span', { cls: 'tag' + (hit ? ' hit' : ''), text: '#' + (j / 2 + 1) + (hit ? ' expected' : '') }),
          el('span', { cls: 'muted', text: 'score ' + fmt(flat[j + 1] / 1000) + ' · ' + Q.pid[flat[j]] + ' ' }),
          el('div', { text: text.length > 260 ? text.slice(0, 260) + '…' : text })));
      }
      grid.appendChild(el('div', null, el('h3', { text: m + ' retrieved (' + Q.metric + ' ' + fmt(r.scores[mi]) + ')' }), list));
    });
    box.appendChild(grid);
    var td = el('td', { colspan: String(cols + (nModels > 1 ? 1 : 0)) }, box);
    return el('tr', { cls: 'detail', 'data-detail': r.id }, td);
  }

  var questionsReady = decodeQuestions().then(function (data) { performance.mark('report:decoded'); return data; }).then(setupQuestions).catch(function (e) {
    $('#q-status').textContent = '';
    fail('#questions', e);
  });
  pending.push(questionsReady);

  // ------------------------------------------------------------------ data
  (function data() {
    var S = D.data, box = $('#data-body');
    if (!S) { box.appendChild(el('p', { cls: 'muted', text: 'No data profile.' })); return; }
    var nq = S.no_question;
    box.appendChild(el('p', { text: S.n_questions + ' questions over ' + S.n_passages_with_questions + ' passages' +
      (S.n_chunks ? ' (' + S.n_chunks + ' chunks in the run)' : '') + ', from ' + S.source + '. Question length: median ' +
      S.length_stats.median + ' words (' + S.length_stats.min + ' to ' + S.length_stats.max + ').' }));
    var c1 = el('div', { cls: 'chart', id: 'chart-per-passage' }), c2 = el('div', { cls: 'chart', id: 'chart-length' });
    box.appendChild(el('div', { cls: 'chart-row' }, c1, c2));
    chart(c1, { width: 'container', height: 200, title: 'Questions per passage', data: { values: S.per_passage },
      mark: { type: 'bar', tooltip: true }, encoding: { x: { field: 'questions', type: 'ordinal', title: 'questions', axis: { labelAngle: 0 } },
      y: { field: 'passages', type: 'quantitative', title: 'passages' } } }, 'per_passage', true);
    chart(c2, { width: 'container', height: 200, title: 'Question length', data: { values: S.length },
      mark: { type: 'bar', tooltip: true }, encoding: { x: S.length.length <= 40
        ? { field: 'words', type: 'ordinal', title: 'words', axis: { labelAngle: 0 } }
        : { field: 'words', type: 'quantitative', bin: { maxbins: 30 }, title: 'words' },
      y: { aggregate: 'sum', field: 'questions', type: 'quantitative', title: 'questions' } } }, 'length', true);

    box.appendChild(el('h3', { text: 'Chunks that got no question: ' + nq.chunks }));
    if (nq.failed || nq.skipped || nq.reasons.length) {
      box.appendChild(el('p', { text: nq.failed + ' failed (the generator gave up after retries), ' + nq.skipped + ' skipped (empty or near-empty).' }));
      box.appendChild(table(['kind', 'reason', 'chunks'], nq.reasons.map(function (r) { return [r.kind, r.reason, r.chunks]; }), [false, false, true]));
      var det = el('details', null, el('summary', { text: 'Each chunk (first ' + nq.examples.length + ')' }),
        table(['chunk', 'kind', 'reason', 'attempts', 'characters'], nq.examples.map(function (f) {
          return [f.node_id, f.kind, f.reason, f.attempts == null ? '' : f.attempts, f.chars == null ? '' : f.chars];
        })));
      box.appendChild(det);
    } else {
      box.appendChild(el('p', { cls: 'muted', text: 'No generation failure was recorded (failures.jsonl absent or empty).' }));
    }

    var dup = S.near_duplicates;
    box.appendChild(el('h3', { text: 'Near-duplicate questions: ' + dup.questions + ' questions in ' + dup.groups + ' groups' }));
    box.appendChild(el('p', { cls: 'muted', text: 'Identical after lower-casing and dropping punctuation, or questions of one passage sharing 80% or more of their words.' }));
    if (dup.examples.length) {
      var ul = el('ul');
      dup.examples.forEach(function (g) { ul.appendChild(el('li', { text: g.join('  ·  ') })); });
      box.appendChild(ul);
    }
    var cp = S.copies;
    box.appendChild(el('h3', { text: 'Questions that copy their passage: ' + cp.questions + ' of ' + S.n_questions }));
    box.appendChild(el('p', { cls: 'muted', text: '80% or more of the question\'s three-word sequences appear verbatim in its passage; such questions are easy for any model and teach it little.' }));
    if (cp.examples.length) {
      box.appendChild(table(['question', 'its passage'], cp.examples.map(function (e) { return [e.question, e.passage]; })));
    }
    box.appendChild(el('h3', { text: 'A sample of questions beside their passage' }));
    S.sample.forEach(function (s) {
      var list = el('ul');
      s.questions.forEach(function (q) { list.appendChild(el('li', { text: q })); });
      box.appendChild(el('div', { cls: 'sample' }, el('div', { cls: 'muted', text: s.passage_id }), list,
        el('div', { cls: 'passage', text: s.passage })));
    });
  })();

  // ------------------------------------------------------------------ training
  (function training() {
    var T = D.training, box = $('#training-body');
    if (!T) { box.appendChild(el('p', { cls: 'muted', text: 'No training record: the models were evaluated as given (no training_result.json or run.json found).' })); return; }
    var facts = {
      'base model': T.base_model, 'how it was chosen': T.base_model_reason, 'questions': T.question_generator,
      'steps': T.steps, 'training time (s)': T.train_seconds == null ? null : fmt(T.train_seconds, 1),
      'whole fine-tune incl. mining and saving (s)': T.total_seconds ? fmt(T.total_seconds, 1) : null,
      'examples per second': T.examples_per_second == null ? null : fmt(T.examples_per_second, 1),
      'training pairs': T.pairs, 'pairs with a mined hard negative': T.pairs_with_negatives,
      'final loss': T.final_loss == null ? null : fmt(T.final_loss, 4), 'resumed from step': T.resumed_from_step || null
    };
    box.appendChild(kv(facts));
    var lossRows = (T.loss || []).map(function (r) { return { step: r.step, loss: r.loss, series: 'training' }; });
    var evalRows = [];
    (T.evaluations || []).forEach(function (r) {
      if (r.metric === 'loss') lossRows.push({ step: r.step, loss: r.value, series: 'validation' });
      else evalRows.push(r);
    });
    var row = el('div', { cls: 'chart-row' });
    box.appendChild(row);
    var stepAxis = { field: 'step', type: 'quantitative', axis: { tickMinStep: 1, format: 'd' } };
    if (lossRows.length) {
      var c1 = el('div', { cls: 'chart', id: 'chart-loss' });
      row.appendChild(c1);
      chart(c1, { width: 'container', height: 220, title: 'Loss per step', data: { values: lossRows },
        mark: { type: 'line', point: lossRows.length < 80, tooltip: true },
        encoding: { x: stepAxis, y: { field: 'loss', type: 'quantitative', scale: { zero: false } },
          color: { field: 'series', type: 'nominal', title: null } } }, 'loss', true);
    }
    if (evalRows.length) {
      var c2 = el('div', { cls: 'chart', id: 'chart-eval' });
      row.appendChild(c2);
      chart(c2, { width: 'container', height: 220, title: 'Validation metric per evaluation', data: { values: evalRows },
        mark: { type: 'line', point: true, tooltip: true },
        encoding: { x: stepAxis, y: { field: 'value', type: 'quantitative', scale: { zero: false } },
          color: { field: 'metric', type: 'nominal', legend: { orient: 'bottom' } } } }, 'evaluations', true);
    }
    if (!(T.loss && T.loss.length)) {
      box.appendChild(el('p', { cls: 'muted', text: 'The trainer\'s log is not in this model\'s training_result.json (no log_history), so there is no loss curve.' }));
    }
    if (T.hyperparameters && Object.keys(T.hyperparameters).length) {
      box.appendChild(el('h3', { text: 'Hyper-parameters' }));
      box.appendChild(kv(T.hyperparameters));
    }
  })();

  // ------------------------------------------------------------------ run
  (function run() {
    var box = $('#run-body');
    box.appendChild(el('h3', { text: 'Models' }));
    box.appendChild(table(['label', 'model', 'backend', 'query instruction', 'seconds (encode corpus, queries, search)', 'search'],
      D.model_info.map(function (m) {
        var s = m.seconds || {};
        return [m.label, m.source, m.backend || '', m.query_instruction ? JSON.stringify(m.query_instruction) : 'none',
          [s.encode_corpus, s.encode_queries, s.search_and_score].map(function (x) { return fmt(x, 1); }).join(' / '),
          m.search || ''];
      })));
    var hosted = D.model_info.filter(function (m) { return m.cost; });
    if (hosted.length) {
      box.appendChild(el('h3', { text: 'Hosted embedding cost' }));
      hosted.forEach(function (m) { box.appendChild(el('p', { cls: 'hosted-cost', text: m.label + ': ' + m.cost })); });
    }
    if (D.run) { box.appendChild(el('h3', { text: 'Run settings (run.json)' })); box.appendChild(kv(D.run)); }
    Object.keys(D.extra_sections || {}).forEach(function (title) {
      box.appendChild(el('h3', { text: title }));
      box.appendChild(el('pre', { text: D.extra_sections[title] }));
    });
    var E = D.environment;
    box.appendChild(el('h3', { text: 'Machine and versions' }));
    box.appendChild(kv({ python: E.python, platform: E.platform, cpu: E.cpu, 'cpu features': E.cpu_features, cores: E.cores,
      'memory (GB)': E.memory_gb, gpu: E.gpu }));
    box.appendChild(table(['package', 'version'], Object.keys(E.packages).map(function (k) { return [k, E.packages[k]]; })));
  })();

  performance.mark('report:sync-done');
  Promise.all(pending).then(function () {
    performance.mark('report:ready');
    document.body.setAttribute('data-ready', '1');
  });
})();
