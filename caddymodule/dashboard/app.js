"use strict";
// Hookgate dashboard: reads the dashboard's JSON API (the admin API's routes, served under
// this page's path) and renders it with DOM text nodes only, so no value can inject markup.
(function () {
	const base = location.pathname.replace(/\/?$/, "/") + "api/";
	const results = {}; // endpoint name -> last test result, kept across refreshes
	const reqState = { route: "", outcome: "", selected: "", routes: [] }; // the request log view

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
	function pill(text, kind) { return el("span", { class: "pill " + kind }, text); }

	// The request log: one route's latest requests, a filter by outcome, and the selected
	// request's detail (problem, violations with their pointers, headers, body) with Replay.
	function requestRow(q) {
		const kind = q.status >= 200 && q.status < 300 ? (q.outcome === "stale" || q.outcome === "duplicate" ? "warn" : "ok") : "bad";
		const tr = el("tr", { "data-request": q.id, class: q.id === reqState.selected ? "selected" : "" },
			td("Time", when(q.time)), td("Outcome", el("div", {}, pill(q.outcome, kind), q.replay ? el("span", { class: "pill warn kind" }, q.forced ? "replay (forced)" : "replay") : null)),
			td("Status", q.status, "num"), td("Event", q.event_id ? el("code", {}, q.event_id) : "—", "text"), td("From", q.remote, "text"));
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
			" ms · store " + q.stages_ms.store + " ms · total " + q.stages_ms.total + " ms");
		if (q.replay_of) row("Replay of", el("code", {}, q.replay_of));
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
		if (q.replayable) {
			const path = "inbound/" + encodeURIComponent(q.route) + "/requests/" + encodeURIComponent(q.id) + "/replay";
			const out = el("div", { class: "result" });
			const go = (force) => async ev => {
				ev.target.disabled = true;
				try { const r = await api(path + (force ? "?force=true" : ""), "POST"); out.className = "result " + (r.status < 300 ? "ok" : "bad"); out.textContent = "replayed: " + r.outcome + " · HTTP " + r.status; }
				catch (e) { out.className = "result bad"; out.textContent = e.message; }
				finally { ev.target.disabled = false; refresh(); }
			};
			kids.push(el("div", { class: "actions" }, el("button", { class: "replay", onclick: go(false) }, "Replay"),
				el("button", { class: "replay-force", onclick: go(true) }, "Replay, skipping dedupe"), out));
		}
		box.replaceChildren(...kids);
	}

	async function refreshRequests(routes) {
		const sel = document.getElementById("req-route");
		const names = routes.map(r => r.route);
		if (names.join() !== reqState.routes.join()) {
			reqState.routes = names;
			sel.replaceChildren(...names.map(n => el("option", { value: n }, n)));
			if (!names.includes(reqState.route)) reqState.route = names[0] || "";
			sel.value = reqState.route;
		}
		if (!reqState.route) { fill("requests", []); return; }
		const q = "inbound/" + encodeURIComponent(reqState.route) + "/requests?limit=100" + (reqState.outcome ? "&outcome=" + encodeURIComponent(reqState.outcome) : "");
		let recs = [];
		try { recs = await api(q); } catch (e) { recs = []; }
		fill("requests", recs.map(requestRow));
	}

	async function api(path, method) { // errors: the admin API's {"error"} or a problem's detail
		const res = await fetch(base + path, { method: method || "GET", headers: { "X-Hookgate-Dashboard": "1" }, cache: "no-store" });
		const body = await res.json().catch(() => ({}));
		if (!res.ok) throw new Error(body.error || body.detail || res.status + " " + res.statusText);
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

	function endpointRow(e) {
		const state = e.error ? pill("store error", "bad") : e.disabled ? pill("disabled", "bad") : pill("active", "ok");
		const actions = el("td", { "data-label": "Actions", class: "actions" });
		actions.append(el("button", { class: "test", onclick: ev => act(ev.target, "endpoints/" + encodeURIComponent(e.name) + "/test", r => { results[e.name] = r; }) }, "Test"));
		if (e.dead > 0) actions.append(el("button", { class: "retry-dead", onclick: ev => act(ev.target, "endpoints/" + encodeURIComponent(e.name) + "/retry") }, "Retry dead"));
		if (e.disabled) actions.append(el("button", { class: "enable", onclick: ev => act(ev.target, "endpoints/" + encodeURIComponent(e.name) + "/enable") }, "Enable"));
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
		// A filter that failed (at run time, or over the publish's budget) did not deliver: say so.
		const ff = e.filter_failures, ffn = ff ? ff.errors + ff.over_budget : 0;
		const filterFailed = ffn ? el("div", { class: "result bad filter-failures" },
			"filter failed " + ffn + "×" + (ff.over_budget ? " (" + ff.over_budget + " over budget)" : "") +
			(ff.last_error ? ": " + ff.last_error : "") + (ff.last_error_at ? " · " + when(ff.last_error_at) : "")) : null;
		return el("tr", { "data-endpoint": e.name },
			td("Endpoint", el("div", {}, el("strong", {}, e.name), e.subscription ? el("span", { class: "pill warn kind" }, "subscription") : null,
				e.description ? el("div", { class: "description" }, e.description) : null, el("div", {}, el("code", {}, e.url)),
				el("div", { class: "meta" }, (e.inbound ? "inbound async · " : "events: ") + e.events.join(" ")), filterFailed), "text"),
			td("State", el("div", {}, state, e.disabled && e.disabled_reason ? el("div", { class: "result bad" }, e.disabled_reason) : null)),
			td("Pending", e.pending, "num"), td("Delivered", e.delivered, "num"), td("Dead", e.dead, "num"),
			// A long error wraps under a short pill, so it never widens the table past the actions.
			td("Last attempt", last ? el("div", {},
				pill((last.status ? "HTTP " + last.status : "failed") + " · " + last.latency_ms.toFixed(1) + " ms", last.status >= 200 && last.status < 300 ? "ok" : "bad"),
				!last.status && last.error ? el("div", { class: "result bad" }, last.error) : null,
				el("div", { class: "meta" }, when(last.at))) : "—", "text"),
			actions);
	}

	function deliveryCells(d) {
		return [td("Delivery", el("code", {}, d.id), "text"), td("Endpoint", d.endpoint),
			td("Event", el("div", {}, d.event_type, el("div", {}, el("code", {}, d.event_id))), "text")];
	}

	function showError(e) {
		const box = document.getElementById("error");
		box.textContent = "Could not load: " + e.message;
		box.style.display = "block";
	}

	async function refresh() {
		try {
			const [eps, inbound, dead, recent, feeds] = await Promise.all([
				api("endpoints"), api("inbound"), api("deliveries?state=dead&limit=50"), api("deliveries?limit=25"), api("feeds")]);
			fill("endpoints", eps.map(endpointRow));
			await refreshRequests(inbound);
			fill("inbound", inbound.map(r => el("tr", { "data-route": r.route },
				td("Route", el("strong", {}, r.route)), td("Received", r.received, "num"), td("Accepted", r.accepted, "num"),
				td("Queued", r.queued, "num"), td("Duplicates", r.duplicates, "num"),
				td("Rejected", Object.keys(r.rejected).length ? Object.entries(r.rejected).map(([k, v]) => k + ": " + v).join(", ") : "—"),
				td("Last", when(r.last_at)))));
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
	refresh();
	setInterval(refresh, 5000);
})();
