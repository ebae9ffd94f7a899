// The testbed HTML report's behaviour: rows from the embedded JSON, filters, a test's timeline on click.
const DATA = JSON.parse(document.getElementById('testbed-data').textContent);
const rows = document.getElementById('rows');
const boundaries = new Set(), outcomes = new Set();
DATA.tests.forEach(t => { outcomes.add(t.outcome); (t.events||[]).forEach(e => boundaries.add(e.boundary)); });
function esc(s){return String(s).replace(/[&<>"]/g,c=>({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]));}
function box(group, value){return `<label><input type=checkbox checked data-group="${group}" value="${esc(value)}"> ${esc(value)}</label>`;}
document.getElementById('f-outcome').innerHTML = [...outcomes].sort().map(o=>box('outcome',o)).join('');
document.getElementById('f-boundary').innerHTML = [...boundaries].sort().map(b=>box('boundary',b)).join('');
function ms(v){return v==null?'':(v>=1000?(v/1000).toFixed(2)+' s':v.toFixed(1)+' ms');}
function counts(t){const c={};(t.events||[]).forEach(e=>{c[e.boundary]=(c[e.boundary]||0)+1});
  return Object.keys(c).sort().map(k=>`${k}: ${c[k]}`).join(', ');}
DATA.tests.forEach((t,i) => {
  const tr = document.createElement('tr');
  tr.className='test'; tr.dataset.index=i; tr.dataset.outcome=t.outcome;
  tr.dataset.boundaries=[...new Set((t.events||[]).map(e=>e.boundary))].join('|');
  tr.innerHTML = `<td class="${esc(t.outcome)}">${esc(t.outcome)}</td><td>${esc(t.nodeid)}</td>`+
    `<td class=num>${ms(t.setup_ms)}</td><td class=num>${ms(t.call_ms)}</td><td class=num>${ms(t.teardown_ms)}</td>`+
    `<td class=num>${ms(t.service_start_ms||null)}</td><td class=muted>${esc(counts(t))}</td>`;
  tr.addEventListener('click', () => toggle(tr, t));
  rows.appendChild(tr);
});
function eventHtml(e){
  const d = Object.entries(e.data||{}).filter(([k,v])=>v!==null&&v!==''&&v!==undefined)
    .map(([k,v])=>`${esc(k)}: ${esc(typeof v==='object'?JSON.stringify(v):v)}`).join('\n');
  return `<div class="ev${e.problem?' problem':''}" data-boundary="${esc(e.boundary)}"><span class=t>+${e.t.toFixed(1)}ms</span>`+
    `<span class=ph>${esc(e.phase)}</span><span class="b b-${esc(e.boundary.replace(/ /g,'-'))}">${esc(e.boundary)}</span> `+
    `${esc(e.kind)}: ${esc(e.summary)}<pre class=data>${d}</pre></div>`;
}
function toggle(tr, t){
  const next = tr.nextElementSibling;
  if (next && next.classList.contains('detail')) { next.remove(); return; }
  const d = document.createElement('tr'); d.className='detail';
  const shown = (t.events||[]).filter(e=>enabled('boundary').has(e.boundary));
  d.innerHTML = `<td colspan=7>`+(t.error?`<pre class=failed>${esc(t.error)}</pre>`:'')+
    (t.service_start_ms?`<div class=muted>setup includes starting services: ${ms(t.service_start_ms)} (billed to the run, not the test)</div>`:'')+
    (t.dropped?`<div class=muted>${t.dropped} earlier events not kept</div>`:'')+
    `<div class=timeline>${shown.map(eventHtml).join('')||'<span class=muted>no boundary events</span>'}</div></td>`;
  d.querySelectorAll('.ev').forEach(ev=>ev.addEventListener('click',()=>ev.classList.toggle('open')));
  tr.after(d);
}
function enabled(group){return new Set([...document.querySelectorAll(`input[data-group="${group}"]:checked`)].map(i=>i.value));}
function applyFilters(){
  const o=enabled('outcome'), b=enabled('boundary'), q=document.getElementById('f-text').value.toLowerCase();
  const allB = b.size===boundaries.size;
  document.querySelectorAll('tr.test').forEach(tr=>{
    const t=DATA.tests[tr.dataset.index];
    const hasB = allB || tr.dataset.boundaries.split('|').some(x=>b.has(x));
    const show = o.has(tr.dataset.outcome) && hasB && (!q || t.nodeid.toLowerCase().includes(q) ||
      (t.error||'').toLowerCase().includes(q));
    tr.style.display = show?'':'none';
    const next=tr.nextElementSibling;
    if (next && next.classList.contains('detail')) {
      if (!show) next.remove(); else next.querySelectorAll('.ev').forEach(ev=>ev.style.display=b.has(ev.dataset.boundary)?'':'none');
    }
  });
}
document.getElementById('filters').addEventListener('input', applyFilters);
