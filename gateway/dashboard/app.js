"use strict";
// Hookgate dashboard: reads the dashboard's JSON API (the admin API's routes, served under
// this page's path) and renders it with DOM text nodes only, so no value can inject markup.
(function () {
	const base = location.pathname.replace(/\/?$/, "/") + "api/";
	const results = {}; // endpoint name -> last test result, kept across refreshes
	const reqState = { route: "", outcome: "", selected: "", routes: [], shown: "" }; // the request log view

	function el(tag, attrs, ...kids) {
		const e = document.createElement(tag);
		for (const [k, v] of Object.entries(attrs || {})) {
			if (k === "class") e.className = v;
			else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
			else e.setAttribute(k, v);
		}
		for (const k of kids) if (k !== null && k !== undefined) e.append(k instanceof Node ? k : String(k));
		return e;
	}
	function td(label, content, cls) { return el("td", { "data-label": label, class: cls || "" }, content); }
	function when(t) { return t ? new Date(t).toLocaleString() : "—"; }
	// A time as date over time of day: a narrow cell whose width does not depend on the hour.
	function whenLines(t) {
		if (!t) return "—";
		const d = new Date(t);
		return el("div", { class: "when" }, d.toLocaleDateString(), el("div", { class: "meta" }, d.toLocaleTimeString()));
	}
	// A CEL expression (a filter or a transform), folded: its first line, the whole on a click.
	function expr(kind, text) {
		if (!text) return null;
		const first = text.split("\n").find(l => l.trim()) || text;
		return el("details", { class: "expr " + kind }, el("summary", {}, kind + ": ", el("code", {}, first.length > 60 ? first.slice(0, 60) + "…" : first)),
			el("pre", {}, text));
	}
	// Failures of a filter or a transform (sender.FilterStats), as one line.
	function failures(kind, f) {
		const n = f ? f.errors + f.over_budget : 0;
		if (!n) return null;
		return el("div", { class: "result bad " + kind + "-failures" }, kind + " failed " + n + "×" + (f.over_budget ? " (" + f.over_budget + " over budget)" : "") +
			(f.last_error ? ": " + f.last_error : "") + (f.last_error_at ? " · " + when(f.last_error_at) : ""));
	}
	function pill(text, kind) { return el("span", { class: "pill " + kind }, text); }
	// An id as one unbreakable token; a delivery id (endpoint~rest) may break after its "~".
	function idCode(id) {
		const parts = String(id).split("~");
		const kids = [];
		parts.forEach((p, i) => { if (i > 0) kids.push(el("wbr")); kids.push(el("span", { class: "tok" }, i < parts.length - 1 ? p + "~" : p)); });
		return el("code", { class: "id" }, ...kids);
	}

	// The request log: one route's latest requests, a filter by outcome, and the selected
	// request's detail (problem, violations with their pointers, headers, body) with Replay.
	function requestRow(q) {
		const kind = q.status >= 200 && q.status < 300 ? (q.outcome === "stale" || q.outcome === "duplicate" || q.outcome === "order_ahead" ? "warn" : "ok") : "bad";
		const tr = el("tr", { "data-request": q.id, class: q.id === reqState.selected ? "selected" : "" },
			td("Time", when(q.time)), td("Outcome", el("div", {}, pill(q.outcome, kind), q.replay ? el("span", { class: "pill warn kind" }, q.forced ? "replay (forced)" : "replay") : null)),
			td("Status", q.status, "num"), td("Event", q.event_id ? idCode(q.event_id) : "—", "text"), td("From", q.remote, "text"));
		tr.addEventListener("click", () => { reqState.selected = q.id; renderDetail(q); for (const r of tr.parentNode.children) r.classList.toggle("selected", r === tr); });
		return tr;
	}

	function renderDetail(q) {
		const box = document.getElementById("req-detail");
		box.hidden = false;
		const dl = el("dl", {});
		const row = (k, v) => { dl.append(el("dt", {}, k), el("dd", {}, v)); };
		row("Request", q.method + " " + q.uri + " · " + q.host + (q.tls ? " · TLS" : ""));
		row("Outcome", q.outcome + " · HTTP " + q.status);
		if (q.detail) row("Problem", q.detail);
		row("Stages", "auth " + q.stages_ms.auth + " ms · parse " + q.stages_ms.parse + " ms · validate " + q.stages_ms.validate +
			" ms · store " + q.stages_ms.store + " ms" + (q.stages_ms.transform !== undefined ? " · transform " + q.stages_ms.transform + " ms" : "") +
			" · total " + q.stages_ms.total + " ms");
		if (q.event_id) row("Event", el("span", {}, idCode(q.event_id), " · ", el("a", { href: "#event/" + encodeURIComponent(q.event_id), class: "story" }, "its story: hand-off and every delivery attempt")));
		if (q.replay_of) row("Replay of", el("code", {}, q.replay_of));
		if (q.order_key) row("Order", orderRecord(q));
		const kids = [el("h3", {}, "Request " + q.id), dl];
		if (q.errors && q.errors.length) {
			const flat = [];
			const walk = (vs, depth) => { for (const v of vs) { flat.push(el("li", { class: "violation" }, el("code", {}, v.pointer || "/"), " " + v.message)); if (v.errors) walk(v.errors, depth + 1); } };
			walk(q.errors, 0);
			kids.push(el("ul", { class: "violations" }, ...flat));
		}
		kids.push(el("h3", {}, "Headers"), el("pre", { class: "headers" }, Object.entries(q.headers || {}).map(([k, v]) => k + ": " + v.join(", ")).join("\n")));
		kids.push(el("h3", {}, "Body · " + q.body_bytes + " bytes" + (q.body_cut ? " (cut: only the first bytes were kept)" : "")),
			el("pre", { class: "body" }, q.body !== undefined ? q.body : q.body_base64 ? "(binary, base64) " + q.body_base64 : ""));
		// What the route's transform handed on instead, beside the original.
		if (q.transformed_body !== undefined)
			kids.push(el("h3", {}, "Transformed body · " + q.transformed_bytes + " bytes (handed on)"), el("pre", { class: "transformed" }, q.transformed_body));
		if (q.replayable) {
			const path = "inbound/" + encodeURIComponent(q.route) + "/requests/" + encodeURIComponent(q.id) + "/replay";
			const out = el("div", { class: "result" });
			// A forced replay of an event older than its record's newest is refused (409) with
			// that value; the page says so and sends it only on a second, explicit click.
			const go = (query) => async ev => {
				ev.target.disabled = true;
				try {
					const r = await api(path + query, "POST");
					out.className = "result " + (r.status < 300 && !r.warning ? "ok" : "bad");
					out.textContent = "replayed: " + r.outcome + " · HTTP " + r.status + (r.warning ? " · " + r.warning : "");
				} catch (e) {
					out.className = "result bad";
					if (e.status === 409 && e.body && e.body.order && e.body.order.older) {
						const o = e.body.order;
						out.replaceChildren("Not sent: this event (" + o.value + ") is older than its record's newest value (" + o.newest +
							"). Replaying it moves the backend's state backwards. ",
							el("button", { class: "replay-older", onclick: go("?force=true&older=true") }, "Replay the older event anyway"));
					} else out.textContent = e.message;
				}
				finally { ev.target.disabled = false; refresh(); }
			};
			kids.push(el("div", { class: "actions" }, el("button", { class: "replay", onclick: go("") }, "Replay"),
				el("button", { class: "replay-force", onclick: go("?force=true") }, "Replay, skipping dedupe and the stale-event guard"), out));
		}
		box.replaceChildren(...kids);
	}

	// A request's order value and its record's newest (the stale-event guard's), read when the
	// request is opened; Clear (two clicks) forgets the record's value.
	function orderRecord(q) {
		const path = "inbound/" + encodeURIComponent(q.route) + "/order?key=" + encodeURIComponent(q.order_key);
		const newest = el("span", { class: "order-newest" }, "…");
		const clear = el("button", { class: "order-clear" }, "Clear the record's value");
		const load = async () => {
			try {
				const r = await api(path);
				newest.textContent = r.recorded ? r.value + (r.expires ? " (kept until " + when(r.expires) + ")" : "") : "none recorded";
				clear.hidden = !r.recorded;
			} catch (e) { newest.textContent = e.message; }
		};
		clear.addEventListener("click", async () => {
			if (!clear.classList.contains("armed")) {
				clear.classList.add("armed");
				clear.textContent = "Confirm: clear " + q.order_key;
				setTimeout(() => { clear.classList.remove("armed"); clear.textContent = "Clear the record's value"; }, 5000);
				return;
			}
			clear.disabled = true;
			try { await api(path, "DELETE"); } catch (e) { newest.textContent = e.message; }
			finally { clear.disabled = false; clear.classList.remove("armed"); clear.textContent = "Clear the record's value"; load(); }
		});
		load();
		return el("div", { class: "order" }, el("div", {}, "record ", el("code", {}, q.order_key), " · this request: ", el("code", { class: "order-value" }, q.order_value)),
			el("div", {}, "record's newest: ", newest, " ", clear));
	}

	async function refreshRequests(routes) {
		const sel = document.getElementById("req-route");
		const names = routes.map(r => r.route);
		if (!reqState.shown || names.join() !== reqState.routes.join()) {
			reqState.routes = names;
			reqState.shown = true;
			// No route yet: say so, rather than an empty box.
			sel.replaceChildren(...(names.length ? names.map(n => el("option", { value: n }, n)) : [el("option", { value: "" }, "no route has received a webhook yet")]));
			sel.disabled = names.length === 0;
			if (!names.includes(reqState.route)) reqState.route = names[0] || "";
			sel.value = reqState.route;
		}
		if (!reqState.route) { reqState.shown = ""; fill("requests", []); return; }
		const q = "inbound/" + encodeURIComponent(reqState.route) + "/requests?limit=100" + (reqState.outcome ? "&outcome=" + encodeURIComponent(reqState.outcome) : "");
		let recs = [];
		try { recs = await api(q); } catch (e) { recs = []; }
		// Rows are rebuilt only when the list changed, so a click is never lost to a refresh
		// that replaced the row under the pointer.
		const shown = reqState.route + "|" + reqState.outcome + "|" + recs.map(q => q.id).join();
		if (shown === reqState.shown) return;
		reqState.shown = shown;
		fill("requests", recs.map(requestRow));
	}

	async function api(path, method) { // errors: the admin API's {"error"} or a problem's detail
		const res = await fetch(base + path, { method: method || "GET", headers: { "X-Hookgate-Dashboard": "1" }, cache: "no-store" });
		const body = await res.json().catch(() => ({}));
		if (!res.ok) { const err = new Error(body.error || body.detail || res.status + " " + res.statusText); err.status = res.status; err.body = body; throw err; }
		return body;
	}

	function fill(id, rows) {
		const sec = document.getElementById(id);
		const tbody = sec.querySelector("tbody");
		tbody.replaceChildren(...rows);
		sec.querySelector(".empty").hidden = rows.length > 0;
		sec.querySelector("table").hidden = rows.length === 0;
	}

	function attemptText(a) {
		if (!a) return "—";
		return (a.status ? "HTTP " + a.status : a.error || "error") + " · " + a.latency_ms.toFixed(1) + " ms · " + when(a.at);
	}

	function attemptsList(d) {
		if (!d.attempts.length) return "none yet";
		return el("details", {}, el("summary", {}, d.attempts.length + " · last " + attemptText(d.attempts[d.attempts.length - 1]).split(" · ")[0]),
			el("ol", {}, ...d.attempts.map(a => el("li", {}, attemptText(a) + (a.status && a.error ? " · " + a.error : "")))));
	}

	async function act(button, path, after) {
		button.disabled = true;
		try { const r = await api(path, "POST"); if (after) after(r); }
		catch (e) { showError(e); }
		finally { button.disabled = false; refresh(); }
	}

	// breakerInfo shows an endpoint's circuit breaker unless it is plainly closed: its state,
	// why it opened, since when, and when it probes (or that an operator holds it).
	function breakerInfo(b) {
		if (b.state === "closed") return null;
		const label = { open: "breaker open", half_open: "breaker half-open", off: "breaker off" }[b.state] || b.state;
		const pillEl = el("span", { class: "pill breaker " + (b.state === "off" ? "warn" : "bad") }, label);
		if (b.state === "off") return el("div", { class: "breaker-state" }, pillEl);
		const when2 = b.manual ? "held open by an operator" : b.probe_at ? "probe " + when(b.probe_at) : "";
		return el("div", { class: "breaker-state" }, pillEl,
			b.reason ? el("div", { class: "result bad breaker-reason" }, b.reason) : null,
			el("div", { class: "meta" }, (b.since ? "since " + when(b.since) : "") + (when2 ? " · " + when2 : "")));
	}

	function endpointRow(e) {
		const state = e.error ? pill("store error", "bad") : e.disabled ? pill("disabled", "bad") : pill("active", "ok");
		const actions = el("td", { "data-label": "Actions", class: "actions" });
		actions.append(el("button", { class: "test", onclick: ev => act(ev.target, "endpoints/" + encodeURIComponent(e.name) + "/test", r => { results[e.name] = r; }) }, "Test"));
		if (e.dead > 0) actions.append(el("button", { class: "retry-dead", onclick: ev => act(ev.target, "endpoints/" + encodeURIComponent(e.name) + "/retry") }, "Retry dead"));
		if (e.disabled) actions.append(el("button", { class: "enable", onclick: ev => act(ev.target, "endpoints/" + encodeURIComponent(e.name) + "/enable") }, "Enable"));
		// The circuit breaker: hold it open by hand, or close it (the backlog drains oldest first).
		const brk = e.breaker || { state: "closed" };
		if (brk.state === "open" || brk.state === "half_open") actions.append(el("button", { class: "breaker-close", onclick: ev => act(ev.target, "endpoints/" + encodeURIComponent(e.name) + "/breaker-close") }, "Close breaker"));
		else actions.append(el("button", { class: "breaker-open", onclick: ev => act(ev.target, "endpoints/" + encodeURIComponent(e.name) + "/breaker-open") }, "Open breaker"));
		actions.append(el("button", { class: "resend", onclick: ev => act(ev.target, "endpoints/" + encodeURIComponent(e.name) + "/resend-latest") }, "Resend latest"));
		if (e.subscription) {
			// Two clicks: the first arms the button, the second deletes (no native dialog).
			const del = el("button", { class: "delete" }, "Delete");
			del.addEventListener("click", async () => {
				if (!del.classList.contains("armed")) {
					del.classList.add("armed");
					del.textContent = "Confirm delete";
					setTimeout(() => { del.classList.remove("armed"); del.textContent = "Delete"; }, 5000);
					return;
				}
				del.disabled = true;
				try { await api("subscriptions/" + encodeURIComponent(e.name), "DELETE"); }
				catch (err) { showError(err); }
				finally { refresh(); }
			});
			actions.append(del);
		}
		const r = results[e.name];
		if (r) actions.append(el("div", { class: "result " + (r.ok ? "ok" : "bad") },
			(r.ok ? "✓ " : "✗ ") + r.diagnosis + (r.status ? " · HTTP " + r.status : "") + " · " + r.latency_ms.toFixed(1) + " ms"));
		const last = e.last_attempt;
		// A filter that failed (at run time, or over the publish's budget) did not deliver, and
		// a transform that failed held its delivery: say so.
		return el("tr", { "data-endpoint": e.name, class: e.subscription ? "subscription" : "" },
			td("Endpoint", el("div", {}, el("strong", { class: "name" }, e.name), e.subscription ? el("span", { class: "pill warn kind" }, "subscription") : null,
				e.description ? el("div", { class: "description" }, e.description) : null, el("div", {}, el("code", {}, e.url)),
				el("div", { class: "meta" }, (e.inbound ? "inbound async · " : "events: ") + e.events.join(" ")), expr("filter", e.filter), expr("transform", e.transform),
				failures("filter", e.filter_failures), failures("transform", e.transform_failures)), "text"),
			td("State", el("div", {}, state, e.disabled && e.disabled_reason ? el("div", { class: "result bad" }, e.disabled_reason) : null, breakerInfo(brk))),
			td("Pending", e.pending, "num"), td("Delivered", e.delivered, "num"), td("Dead", e.dead, "num"),
			// A long error wraps under a short pill, so it never widens the table past the actions.
			td("Last attempt", last ? el("div", {},
				pill((last.status ? "HTTP " + last.status : "failed") + " · " + last.latency_ms.toFixed(1) + " ms", last.status >= 200 && last.status < 300 ? "ok" : "bad"),
				!last.status && last.error ? el("div", { class: "result bad" }, last.error) : null,
				el("div", { class: "meta" }, when(last.at))) : "—", "text"),
			actions);
	}

	function deliveryCells(d) {
		return [td("Delivery", idCode(d.id), "text"), td("Endpoint", d.endpoint),
			td("Event", el("div", {}, d.event_type, el("div", {}, eventLink(d.event_id)),
				// Held by its endpoint's transform: no request was sent; retry after the fix.
				d.transform_error ? el("div", { class: "result bad transform-error" }, "transform failed: " + d.transform_error) : null), "text")];
	}

	// quarantineRow is one quarantining route: what it holds, its drift report (fetched with
	// it), and the release and drop actions (drop asks first: it is explicit).
	function quarantineRow(r, drift) {
		const q = r.quarantine || { held: 0 };
		const route = encodeURIComponent(r.route);
		const groups = (drift && drift.groups) || [];
		const driftCell = groups.length ? el("details", {}, el("summary", {}, groups.length + " group" + (groups.length > 1 ? "s" : "") + " · top " + groups[0].pointer),
			el("ol", { class: "drift" }, ...groups.slice(0, 20).map(g => el("li", { "data-pointer": g.pointer },
				pill(g.kind === "violation" ? "violation" : "unnamed field", g.kind === "violation" ? "bad" : "warn"), " ", el("code", {}, g.pointer), " ",
				g.message + " · " + g.count + "× · last " + when(g.last_seen))))) : "none seen";
		if (groups.length) driftCell.open = true; // shown: a change coming is the point
		const actions = el("div", {});
		if (q.held > 0) {
			actions.append(el("button", { class: "q-release", onclick: ev => act(ev.target, "inbound/" + route + "/quarantine/release", showRelease) }, "Release all"),
				el("button", { class: "q-force", title: "hand on without checking the schema", onclick: ev => { if (confirm("Release every held request of " + r.route + " without checking the schema?")) act(ev.target, "inbound/" + route + "/quarantine/release?force=true", showRelease); } }, "Release anyway"),
				el("button", { class: "q-drop", onclick: ev => { if (confirm("Drop every held request of " + r.route + "? They are kept as history, not handed on.")) act(ev.target, "inbound/" + route + "/quarantine/drop?all=true"); } }, "Drop all"));
		}
		return el("tr", { "data-route": r.route, class: q.held > 0 ? "held" : "" },
			td("Route", el("strong", { class: "name" }, r.route), "text"),
			td("Held", q.held > 0 ? pill(String(q.held), "bad") : "0", "num"),
			td("Oldest", q.oldest ? whenLines(q.oldest) : "—"),
			td("Drift", driftCell, "text"), td("Actions", actions, "actions"));
	}

	function showRelease(a) {
		const box = document.getElementById("quarantine-alert");
		box.hidden = false;
		box.dataset.result = "1";
		box.textContent = "Released " + a.released + " · still invalid " + a.still_invalid + " · failed " + a.failed + (a.forced ? " (schema skipped)" : "");
	}

	function showError(e) {
		const box = document.getElementById("error");
		box.textContent = "Could not load: " + e.message;
		box.style.display = "block";
	}


	// Views: the selected one is the URL's fragment (#overview, #inbound, #outbound,
	// #subscriptions, #feeds, #breakers, #quarantine, #all: every table, #event/<id>,
	// #search/<id>), so a link can be shared; without a fragment, ?view= names it. Each
	// section lists the views it belongs to (data-views).
	const known = ["overview", "inbound", "outbound", "subscriptions", "feeds", "breakers", "quarantine", "all", "event", "search"];
	const view = { name: "overview", arg: "", window: "1h" };
	function route() {
		let h = location.hash.replace(/^#/, "");
		try { h = decodeURIComponent(h); } catch (e) { h = ""; } // a malformed %-escape: the Overview
		h = h || new URLSearchParams(location.search).get("view") || "";
		const i = h.indexOf("/");
		let name = i < 0 ? h : h.slice(0, i), arg = i < 0 ? "" : h.slice(i + 1);
		if (!known.includes(name)) { name = "overview"; arg = ""; }
		if (name === "overview" && (arg === "10m" || arg === "1h")) view.window = arg;
		view.name = name; view.arg = arg;
		document.body.dataset.view = name;
		for (const sec of document.querySelectorAll("main section[data-views]")) sec.hidden = !sec.dataset.views.split(" ").includes(name);
		for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("current", a.dataset.view === name);
		for (const b of document.querySelectorAll("#charts button.win")) b.classList.toggle("current", b.dataset.window === view.window);
		if (name === "event" || name === "search") document.getElementById("search-id").value = arg;
	}
	function eventLink(id) { return el("a", { href: "#event/" + encodeURIComponent(id), class: "story" }, idCode(id)); }

	// A chart: one polyline per series over the window's 60 steps, drawn as SVG (no library,
	// no build step), with its largest value, the window's start and end in local time, and a
	// legend with each series' total (or last value for samples).
	const SVG = "http://www.w3.org/2000/svg";
	function svg(tag, attrs) { const e = document.createElementNS(SVG, tag); for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v); return e; }
	function chart(title, parts, start, step) {
		const fig = el("figure", { class: "chart-card", "data-chart": title }, el("figcaption", {}, title));
		for (const p of parts) fig.append(...plot(p.lines, start, step, p.opts || {}));
		return fig;
	}
	function plot(lines, start, step, opts) {
		const W = 360, H = opts.height || 96, L = 34, B = 14, T = 6;
		const maxV = Math.max(1, ...lines.flatMap(l => l.values.map(v => v === null ? 0 : v)));
		const x = i => L + (W - L - 4) * i / 59, y = v => T + (H - T - B) * (1 - v / maxV);
		const s = svg("svg", { viewBox: "0 0 " + W + " " + H, class: "chart", role: "img", "aria-label": lines.map(l => l.name).join(", ") });
		s.append(svg("line", { x1: L, y1: y(0), x2: W - 4, y2: y(0), stroke: "#d0d5dd" }), svg("line", { x1: L, y1: y(maxV), x2: W - 4, y2: y(maxV), stroke: "#eef0f3" }));
		const label = (tx, attrs) => { const t = svg("text", Object.assign({ "font-size": 10, fill: "#667085" }, attrs)); t.textContent = tx; return t; };
		const fmt = opts.seconds ? secs : n => String(Math.round(n));
		s.append(label(fmt(maxV), { x: L - 4, y: y(maxV) + 4, "text-anchor": "end" }), label("0", { x: L - 4, y: y(0) + 3, "text-anchor": "end" }));
		const t0 = new Date(start).getTime(), hm = t => new Date(t).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
		s.append(label(hm(t0), { x: L, y: H - 2 }), label(hm(t0 + 60 * step * 1000), { x: W - 4, y: H - 2, "text-anchor": "end" }));
		const legend = el("div", { class: "legend" });
		for (const l of lines) {
			let pts = [];
			const segs = [];
			l.values.forEach((v, i) => { if (v === null) { if (pts.length) segs.push(pts); pts = []; } else pts.push([x(i), y(v)]); });
			if (pts.length) segs.push(pts);
			for (const p of segs) s.append(p.length === 1 ? svg("circle", { cx: p[0][0].toFixed(1), cy: p[0][1].toFixed(1), r: 2, fill: l.color }) :
				svg("polyline", { points: p.map(q => q[0].toFixed(1) + "," + q[1].toFixed(1)).join(" "), fill: "none", stroke: l.color, "stroke-width": 1.6, "stroke-linejoin": "round" }));
			const known = l.values.filter(v => v !== null);
			const total = opts.last ? (known.length ? known[known.length - 1] : null) : known.reduce((a, b) => a + b, 0);
			legend.append(el("span", { class: "key", "data-series": l.name }, el("i", { class: "swatch " + l.cls }), l.name + " " + (total === null ? "—" : fmt(total)) + (opts.last ? " now" : "")));
		}
		return [s, legend];
	}
	function secs(n) { n = Math.round(n); return n < 120 ? n + " s" : n < 7200 ? Math.round(n / 60) + " min" : Math.round(n / 3600) + " h"; }
	// Inbound outcomes in three lines: handed on (accepted, queued), answered without handing
	// on (duplicate, stale, order guard), refused, held or failed (every other outcome, and a
	// backend's non-2xx answer: the sender retries those).
	const handedOn = ["accepted", "queued", "order_ahead"], notHanded = ["duplicate", "in_flight", "stale"];
	function sumOf(outcomes, pick) {
		const out = new Array(60).fill(0);
		for (const [k, vs] of Object.entries(outcomes)) if (pick(k)) vs.forEach((v, i) => { out[i] += v; });
		return out;
	}
	async function refreshCharts() {
		const a = await api("activity?window=" + view.window);
		document.getElementById("instance").textContent = "· " + a.instance + " · " + (a.window === "10m" ? "last 10 minutes, 10-second steps" : "last hour, 1-minute steps");
		const rc = document.getElementById("route-charts"), ec = document.getElementById("endpoint-charts");
		rc.replaceChildren(...a.routes.map(r => chart("route " + r.route, [{ lines: [
			{ name: "handed on", cls: "ok", color: "#067647", values: sumOf(r.outcomes, k => handedOn.includes(k)) },
			{ name: "duplicate or stale", cls: "warn", color: "#b54708", values: sumOf(r.outcomes, k => notHanded.includes(k)) },
			{ name: "refused, held or failed", cls: "bad", color: "#b42318", values: sumOf(r.outcomes, k => !handedOn.includes(k) && !notHanded.includes(k)) }] }], a.start, a.step_seconds)));
		// An endpoint's card: its attempts, then its pending count and oldest pending age (samples).
		ec.replaceChildren(...a.endpoints.map(e => chart("endpoint " + e.endpoint, [
			{ lines: [
				{ name: "delivered", cls: "ok", color: "#067647", values: sumOf(e.attempts, k => k === "delivered") },
				{ name: "retry", cls: "warn", color: "#b54708", values: sumOf(e.attempts, k => k === "retry") },
				{ name: "dead or gone", cls: "bad", color: "#b42318", values: sumOf(e.attempts, k => k === "dead" || k === "gone") }] },
			{ lines: [{ name: "pending", cls: "accent", color: "#1849a9", values: e.pending }], opts: { last: true, height: 64 } },
			{ lines: [{ name: "oldest pending", cls: "warn", color: "#b54708", values: e.oldest_pending_age_seconds }], opts: { last: true, seconds: true, height: 64 } }], a.start, a.step_seconds)));
		document.querySelector("#charts .empty").hidden = a.routes.length + a.endpoints.length > 0;
	}

	// One event's story: the inbound requests that carried it, then each delivery with every
	// attempt (time, status, latency, the answer's first bytes, the error), oldest first.
	async function refreshStory(id) {
		const sec = document.getElementById("event"), list = sec.querySelector("ol.timeline"), empty = sec.querySelector(".empty");
		document.getElementById("event-id").textContent = id;
		let s;
		try { s = await api("events/" + encodeURIComponent(id)); }
		catch (e) { list.replaceChildren(); empty.hidden = false; empty.textContent = e.status === 404 ? "No request log record and no delivery of this event on this gateway." : e.message; return; }
		empty.hidden = true;
		const items = [];
		for (const q of s.requests) items.push(el("li", { class: "step inbound " + (q.status < 300 ? "ok" : "bad") }, el("div", { class: "when" }, when(q.time)),
			el("div", {}, el("strong", {}, "Received on " + q.route), " ", pill(q.outcome + " · HTTP " + q.status, q.status < 300 ? "ok" : "bad"), q.replay ? pill("replay", "warn") : null),
			el("div", { class: "meta" }, q.method + " " + q.uri + " from " + q.remote + " · " + q.stages_ms.total + " ms" + (q.detail ? " · " + q.detail : "")),
			el("div", { class: "meta" }, "request ", el("code", {}, q.id), q.queued_delivery ? " · queued as delivery " : "", q.queued_delivery ? idCode(q.queued_delivery) : null)));
		for (const d of s.deliveries) {
			items.push(el("li", { class: "step queued" }, el("div", { class: "when" }, when(d.created)),
				el("div", {}, el("strong", {}, (d.endpoint.startsWith("feed:") ? "Queued in " : "Queued for ") + d.endpoint), " ", pill(d.state, d.state === "delivered" ? "ok" : d.state === "dead" ? "bad" : "warn")),
				el("div", { class: "meta" }, "delivery ", idCode(d.id), " · " + d.event_type + " · " + d.body_bytes + " bytes"),
				d.transform_error ? el("div", { class: "result bad" }, "transform failed: " + d.transform_error) : null));
			d.attempts.forEach((a, i) => {
				const ok = a.status >= 200 && a.status < 300;
				items.push(el("li", { class: "step attempt " + (ok ? "ok" : "bad"), "data-delivery": d.id }, el("div", { class: "when" }, when(a.at)),
					el("div", {}, "Attempt " + (i + 1) + " to " + d.endpoint + " ", pill((a.status ? "HTTP " + a.status : "no answer") + " · " + a.latency_ms.toFixed(1) + " ms", ok ? "ok" : "bad")),
					a.error ? el("div", { class: "result bad attempt-error" }, a.error) : null,
					a.response ? el("pre", { class: "response" }, a.response) : null));
			});
			if (d.state === "pending" && d.next_attempt_at) items.push(el("li", { class: "step next" }, el("div", { class: "when" }, when(d.next_attempt_at)), el("div", { class: "meta" }, "next attempt to " + d.endpoint)));
		}
		if (s.partial) items.push(el("li", { class: "meta" }, "Only the first 2000 endpoints were looked in."));
		list.replaceChildren(...items);
	}

	async function refreshSearch(id) {
		const box = document.querySelector("#search-results .found");
		let r;
		try { r = await api("search?id=" + encodeURIComponent(id)); }
		catch (e) { box.replaceChildren(el("div", { class: "result bad" }, e.message)); return; }
		const kids = [];
		if (!r.requests.length && !r.deliveries.length) kids.push(el("div", { class: "empty" }, "Nothing found for " + id + " in the request logs, deliveries and dead letters."));
		if (r.requests.length) kids.push(el("h3", {}, "Requests"), el("ul", {}, ...r.requests.map(q => el("li", { "data-request": q.id }, when(q.time) + " · " + q.route + " · " + q.outcome + " · HTTP " + q.status + " · ", q.event_id ? eventLink(q.event_id) : el("code", {}, q.id)))));
		if (r.deliveries.length) kids.push(el("h3", {}, "Deliveries"), el("ul", {}, ...r.deliveries.map(d => el("li", { "data-delivery": d.id }, idCode(d.id), " · " + d.state + " · ", eventLink(d.event_id)))));
		box.replaceChildren(...kids);
		// One event found: its story below.
		const sec = document.getElementById("event");
		sec.hidden = r.event_ids.length !== 1;
		if (r.event_ids.length === 1) await refreshStory(r.event_ids[0]);
	}

	function breakerRow(e) {
		const b = e.breaker || { state: "closed" };
		const name = encodeURIComponent(e.name);
		const actions = el("div", {}, b.state === "open" || b.state === "half_open" ?
			el("button", { class: "breaker-close", onclick: ev => act(ev.target, "endpoints/" + name + "/breaker-close") }, "Close breaker") :
			el("button", { class: "breaker-open", onclick: ev => act(ev.target, "endpoints/" + name + "/breaker-open") }, "Open breaker"));
		return el("tr", { "data-endpoint": e.name }, td("Endpoint", el("strong", { class: "name" }, e.name), "text"),
			td("State", pill(b.state.replace("_", "-"), b.state === "closed" ? "ok" : b.state === "off" ? "warn" : "bad")),
			td("Since", b.since ? whenLines(b.since) : "—"), td("Why", b.reason || (b.manual ? "held open by an operator" : "—"), "text"),
			td("Pending", e.pending, "num"), td("Actions", actions, "actions"));
	}

	async function refresh() {
		try {
			const [eps, inbound, dead, recent, feeds] = await Promise.all([
				api("endpoints"), api("inbound"), api("deliveries?state=dead&limit=50"), api("deliveries?limit=25"), api("feeds")]);
			fill("endpoints", eps.map(endpointRow));
			fill("breakers", eps.filter(e => e.breaker && e.breaker.state !== "closed").map(breakerRow));
			if (view.name === "overview") await refreshCharts();
			else if (view.name === "event") await refreshStory(view.arg);
			else if (view.name === "search" && view.arg) await refreshSearch(view.arg);
			await refreshRequests(inbound);
			const quarantining = inbound.filter(r => r.on_invalid === "quarantine");
			const drifts = await Promise.all(quarantining.map(r => api("inbound/" + encodeURIComponent(r.route) + "/drift").catch(() => null)));
			fill("quarantine", quarantining.map((r, i) => quarantineRow(r, drifts[i])));
			// A route holding requests is shown first, above everything else.
			const held = quarantining.filter(r => r.quarantine && r.quarantine.held > 0);
			const alert = document.getElementById("quarantine-alert");
			if (held.length) {
				alert.hidden = false;
				delete alert.dataset.result;
				alert.textContent = held.map(r => r.quarantine.held + " request" + (r.quarantine.held > 1 ? "s" : "") + " held in the quarantine of " + r.route).join(" · ") + ": the sender's payload no longer matches the schema.";
			} else if (!alert.dataset.result) alert.hidden = true;
			fill("inbound", inbound.map(r => el("tr", { "data-route": r.route },
				td("Route", el("div", {}, el("strong", { class: "name" }, r.route), expr("transform", r.transform)), "text"), td("Received", r.received, "num"), td("Accepted", r.accepted, "num"),
				td("Queued", r.queued, "num"), td("Duplicates", r.duplicates, "num"), td("Stale", r.stale, "num"), td("Ahead", r.order_ahead, "num"),
				// One reason a line-piece: the cell wraps between reasons, never inside one.
				td("Rejected", Object.keys(r.rejected).length ? el("div", {}, ...Object.entries(r.rejected).map(([k, v]) => el("span", { class: "reason" }, k + ": " + v))) : "—", "reasons"),
				td("Last", whenLines(r.last_at)))));
			// Feeds: an operator must see when the caller stopped calling.
			fill("feeds", feeds.map(f => el("tr", { "data-feed": f.name },
				td("Feed", el("strong", {}, f.name)), td("Pending", f.pending, "num"), td("Served", f.served, "num"),
				td("Last call", f.last_call ? el("div", {},
					pill("HTTP " + f.last_call.status + " · " + f.last_call.records + " records", f.last_call.status === 200 ? "ok" : "bad"),
					el("div", { class: "meta" }, when(f.last_call.at) + " · " + f.last_call.from + " · " + f.last_call.bytes + " bytes")) : "never called", "text"),
				td("Actions", el("button", { class: "requeue", onclick: ev => act(ev.target, "feeds/" + encodeURIComponent(f.name) + "/requeue?since=1h") },
					"Requeue last hour"), "actions"))));
			fill("dead", dead.map(d => el("tr", { "data-delivery": d.id }, ...deliveryCells(d), td("Attempts", attemptsList(d), "text"),
				td("", el("button", { class: "retry", onclick: ev => act(ev.target, "deliveries/" + encodeURIComponent(d.id) + "/retry") }, "Retry")))));
			fill("recent", recent.map(d => el("tr", { "data-delivery": d.id }, ...deliveryCells(d),
				td("State", pill(d.state, d.state === "delivered" ? "ok" : d.state === "dead" ? "bad" : "warn")), td("Attempts", attemptsList(d), "text"))));
			document.getElementById("error").style.display = "none";
			document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
		} catch (e) {
			showError(e);
		}
	}

	document.getElementById("req-route").addEventListener("change", ev => { reqState.route = ev.target.value; reqState.selected = ""; document.getElementById("req-detail").hidden = true; refresh(); });
	document.getElementById("req-outcome").addEventListener("change", ev => { reqState.outcome = ev.target.value; refresh(); });
	document.getElementById("tz").textContent = Intl.DateTimeFormat().resolvedOptions().timeZone || "local time";
	document.getElementById("search").addEventListener("submit", ev => {
		ev.preventDefault();
		const id = document.getElementById("search-id").value.trim();
		if (id) location.hash = "#search/" + encodeURIComponent(id);
	});
	for (const b of document.querySelectorAll("#charts button.win")) b.addEventListener("click", () => { location.hash = "#overview/" + b.dataset.window; });
	window.addEventListener("hashchange", () => { route(); refresh(); });
	route();
	refresh();
	setInterval(refresh, 5000);
})();
